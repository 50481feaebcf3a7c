/**
 * On-demand work, as background work sees it (the agent's reads; a
 * supernode's origin fetches for callers who wait): the prefetcher and the
 * idle-time inflation wait while a read is fetching, or a reader was
 * served (from the store too: a container that is reading is starting up,
 * and its next read may miss), and for a quiet spell after, so that a
 * container's reads never queue behind the stream.
 */
import { sleep } from "./abort.ts";

/** See the module comment. */
export class DemandActivity {
  #active = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  readonly #now: () => number;

  constructor(components: { now?: () => number } = {}) {
    this.#now = components.now ?? (() => performance.now());
  }

  /** An on-demand fetch starts; call the function returned when it ends (once). */
  begin(): () => void {
    this.#active++;
    this.#lastStart = this.#now();
    let ended = false;
    return () => {
      if (!ended) this.#active--;
      ended = true;
    };
  }

  /** A reader was served (a hit): counts as activity, like a fetch starting. */
  touch(): void {
    this.#lastStart = this.#now();
  }

  /** True while an on-demand fetch is under way, or one started less than `quietMs` ago. */
  busy(quietMs: number): boolean {
    return this.#active > 0 || this.#now() - this.#lastStart < quietMs;
  }
}

/**
 * Resolves once `demand` has been quiet for `quietMs`, or after `maxWaitMs`
 * of waiting, whichever comes first (background work yields to demand, but
 * is never starved by it); rejects with the signal's reason on abort.
 */
export async function yieldTo(demand: DemandActivity, opts: { quietMs: number; maxWaitMs: number; signal?: AbortSignal; pollMs?: number }): Promise<void> {
  const until = performance.now() + opts.maxWaitMs;
  while (demand.busy(opts.quietMs) && performance.now() < until) await sleep(opts.pollMs ?? 20, opts.signal);
}
