/**
 * Background answers yield to answers somebody waits for. An agent asks a
 * supernode for its startup chunks and a container's reads (on demand), and
 * streams the rest of the image in behind (background). Sent side by side,
 * they share the supernode's core and NIC evenly, so in a fleet whose hosts
 * start one after another a newcomer's startup chunks wait behind the
 * prefetch of every host already running. Here, while any on-demand answer
 * is being sent, a background answer starts only when fewer than
 * `BACKGROUND_SLOTS` background answers are being sent, or once it has
 * waited `MAX_BACKGROUND_WAIT_MS` (never starved, and well inside an
 * agent's deadline); with no on-demand answer in flight it starts at once.
 * An answer under way is not paused. `slots` 0 turns the gate off (every
 * background answer starts at once). It orders the supernode's core, not
 * a full NIC: an answer ends once its bytes are in the kernel's socket
 * buffer, and bytes queued there share the wire evenly.
 */
import { nodeAfter, type After } from "@shoal/base";

/** Background answers sent at once while on-demand answers are being sent. */
export const BACKGROUND_SLOTS = 2;
/** Longest a background answer waits for a slot, ms. */
export const MAX_BACKGROUND_WAIT_MS = 2_000;

/** Answers being sent now. */
export interface AnswerLoad {
  onDemand: number;
  background: number;
}

/**
 * The gate's rule (pure, so the fleet simulator calls it as the supernode
 * does): may a background answer that has waited `waitedMs` start now,
 * with `slots` background answers allowed beside on-demand ones (0: any
 * number)?
 */
export function backgroundMayStart(load: AnswerLoad, waitedMs: number, slots = BACKGROUND_SLOTS): boolean {
  return slots === 0 || load.onDemand === 0 || load.background < slots || waitedMs >= MAX_BACKGROUND_WAIT_MS;
}

/** Counters the gate reports to (metrics). */
export interface AnswerGateObserver {
  /** A background answer started after waiting `ms` (0: at once). */
  backgroundStarted?(ms: number): void;
}

/** What the gate needs; the defaults are the process's clock and timers (the fleet simulator gives its own, and its policy). */
export interface AnswerGateComponents {
  observer?: AnswerGateObserver;
  now?: () => number;
  after?: After;
  rule?: typeof backgroundMayStart;
}

interface Waiter {
  since: number;
  start(): void;
}

/** See the module comment. Each answer takes a turn and calls what the turn gives when it is sent (or abandoned). */
export class AnswerGate {
  readonly #load: AnswerLoad = { onDemand: 0, background: 0 };
  readonly #waiting: Waiter[] = [];
  readonly #observer: AnswerGateObserver;
  readonly #now: () => number;
  readonly #after: After;
  readonly #rule: typeof backgroundMayStart;
  readonly #slots: number;

  constructor(components: AnswerGateComponents = {}, init: { slots?: number } = {}) {
    this.#observer = components.observer ?? {};
    this.#now = components.now ?? (() => performance.now());
    this.#after = components.after ?? nodeAfter({ unref: true });
    this.#rule = components.rule ?? backgroundMayStart;
    this.#slots = init.slots ?? BACKGROUND_SLOTS;
  }

  /** Answers being sent now, and background ones waiting. */
  stats(): AnswerLoad & { waiting: number } {
    return { ...this.#load, waiting: this.#waiting.length };
  }

  /** An on-demand answer starts now; call the function returned when it ends (once). */
  onDemand(): () => void {
    this.#load.onDemand++;
    return this.#once(() => this.#load.onDemand--);
  }

  /**
   * A background answer's turn: `start` is called (at once, or later from
   * an answer's end or a timer) when it may start, with the function to
   * call when it ends (once). Returns what takes it out of the queue if it
   * has not started yet (its caller went away).
   */
  takeTurn(start: (end: () => void) => void): () => void {
    const since = this.#now();
    if (this.#waiting.length === 0 && this.#rule(this.#load, 0, this.#slots)) {
      start(this.#startBackground(0));
      return () => undefined;
    }
    const leave = () => {
      const i = this.#waiting.indexOf(waiter);
      if (i >= 0) this.#waiting.splice(i, 1);
    };
    // waited its longest: it starts whatever the load
    const cancel = this.#after(MAX_BACKGROUND_WAIT_MS, () => {
      leave();
      waiter.start();
    });
    let started = false;
    const waiter: Waiter = {
      since,
      start: () => {
        if (started) return;
        started = true;
        cancel();
        start(this.#startBackground(this.#now() - since));
      },
    };
    this.#waiting.push(waiter);
    return () => {
      started = true;
      cancel();
      leave();
    };
  }

  /**
   * `takeTurn` as a promise: resolves when the background answer may start,
   * with the function to call when it ends (once); rejects with the
   * signal's reason if the caller goes away while it waits.
   */
  background(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      // (listening before the turn is taken: a turn taken at once takes the listener off again)
      const gone = () => {
        leave();
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", gone, { once: true });
      const leave = this.takeTurn((end) => {
        signal?.removeEventListener("abort", gone);
        resolve(end);
      });
    });
  }

  #startBackground(waitedMs: number): () => void {
    this.#load.background++;
    this.#observer.backgroundStarted?.(waitedMs);
    return this.#once(() => this.#load.background--);
  }

  /** `end` once, then let waiting background answers start as the rule allows. */
  #once(end: () => void): () => void {
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      end();
      this.#admit();
    };
  }

  /** Start waiting background answers, oldest first, while the rule allows. */
  #admit(): void {
    const now = this.#now();
    while (this.#waiting.length > 0 && this.#rule(this.#load, now - this.#waiting[0]!.since, this.#slots)) this.#waiting.shift()!.start();
  }
}
