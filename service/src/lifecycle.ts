/**
 * Starting and stopping the parts of a daemon. A daemon's wiring function
 * starts its components in order, pushing each one's stop onto a
 * `Lifecycle`; if a later start fails, `close()` stops what was started, in
 * reverse order, so a half-started daemon leaves nothing open.
 */
import type { Logger } from "pino";

/** A part of a daemon with a life of its own: a timer, a server, a background job. */
export interface Component {
  /** Begin working. Resolves once the component is ready; rejects (having undone itself) when it cannot start. */
  start(): Promise<void>;
  /** Stop working and release everything. Idempotent; never rejects for a component that is already stopped. */
  stop(): Promise<void>;
}

/** The stop functions of what a daemon opened, closed in reverse order. */
export class Lifecycle {
  readonly #stops: Array<{ name: string; stop: () => Promise<unknown> | unknown }> = [];
  readonly #log: Logger | undefined;
  #closing: Promise<void> | undefined;

  constructor(components: { logger?: Logger } = {}) {
    this.#log = components.logger;
  }

  /** Remember how to undo something just opened. */
  defer(name: string, stop: () => Promise<unknown> | unknown): void {
    this.#stops.push({ name, stop });
  }

  /** Start `c` and remember to stop it. Resolves to `c`. */
  async start<C extends Component>(name: string, c: C): Promise<C> {
    await c.start();
    this.defer(name, () => c.stop());
    return c;
  }

  /**
   * Undo everything, newest first. A failing stop is logged and does not
   * keep the others from running. Idempotent: later calls share the first.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#stops.length > 0) {
        const { name, stop } = this.#stops.pop()!;
        try {
          await stop();
        } catch (err) {
          this.#log?.warn({ err, part: name }, "stopping failed");
        }
      }
    })();
    return this.#closing;
  }

  /**
   * Run `open` (which defers the stop of each thing it opens); if it throws,
   * close what it opened and rethrow.
   */
  async build<T>(open: (life: Lifecycle) => Promise<T>): Promise<T> {
    try {
      return await open(this);
    } catch (err) {
      await this.close();
      throw err;
    }
  }
}

/** A component that runs `tick` every `everyMs` (unref'd: it never keeps the process alive). */
export class Interval implements Component {
  readonly #tick: () => void;
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(tick: () => void, everyMs: number) {
    this.#tick = tick;
    this.#everyMs = everyMs;
  }

  async start(): Promise<void> {
    this.#timer ??= setInterval(this.#tick, this.#everyMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
