/** Bounded recent history a daemon keeps for its status page: samples over time, and recent errors. */
import { Interval, type Component } from "./lifecycle.ts";

/** One sample: when (ms since the epoch) and what. */
export interface Sample<T> {
  t: number;
  v: T;
}

/**
 * Takes `sample()` every `everyMs` and keeps the last `keep` samples: the
 * series a status page draws (cumulative counters; the page turns them into
 * rates). Start and stop it through a `Lifecycle`.
 */
export class Sampler<T> implements Component {
  readonly #samples: Array<Sample<T>> = [];
  readonly #keep: number;
  readonly #sample: () => T;
  readonly #timer: Interval;

  constructor(components: { sample: () => T }, init: { everyMs: number; keep: number }) {
    this.#sample = components.sample;
    this.#keep = init.keep;
    this.#timer = new Interval(() => this.take(), init.everyMs);
  }

  async start(): Promise<void> {
    this.take();
    await this.#timer.start();
  }

  async stop(): Promise<void> {
    await this.#timer.stop();
  }

  /** Take a sample now. */
  take(): void {
    this.#samples.push({ t: Date.now(), v: this.#sample() });
    if (this.#samples.length > this.#keep) this.#samples.splice(0, this.#samples.length - this.#keep);
  }

  /** The samples kept, oldest first. */
  samples(): Array<Sample<T>> {
    return [...this.#samples];
  }
}

/** One recent event: its message, when it last happened, and how often in a row. */
export interface RecentEvent {
  t: number;
  message: string;
  count: number;
}

/**
 * The last `keep` distinct events (errors a status page lists). An event
 * equal to one already kept moves it to the front and counts it, so one
 * failure repeated a thousand times does not push out the others.
 */
export class RecentEvents {
  readonly #events = new Map<string, RecentEvent>();
  readonly #keep: number;

  constructor(init: { keep?: number } = {}) {
    this.#keep = init.keep ?? 50;
  }

  add(message: string): void {
    const seen = this.#events.get(message);
    this.#events.delete(message);
    this.#events.set(message, { t: Date.now(), message, count: (seen?.count ?? 0) + 1 });
    if (this.#events.size > this.#keep) this.#events.delete(this.#events.keys().next().value!);
  }

  /** Newest first. */
  list(): RecentEvent[] {
    return [...this.#events.values()].reverse();
  }
}
