/**
 * The supernodes of a datacenter as one: each key (a chunk or layer digest)
 * belongs to the supernode ranked first for it by rendezvous hashing, and
 * when that one is down its share moves to the next. Agents, preheat and
 * the supernodes themselves rank with the same function over the same list.
 */
import { SUPERNODE_DOWN_MS } from "./constants.ts";
import { SupernodeCallError, SupernodeClient } from "./client.ts";
import { normalizeSupernodeUrl, rankSupernodes } from "./rendezvous.ts";

/** True for a failure that moves a call to the next supernode (unreachable, timed out, 5xx). */
function unavailable(err: unknown): boolean {
  return err instanceof SupernodeCallError && err.code === "SHOAL_ERR_SUPERNODE_UNAVAILABLE";
}

/** Every supernode of the datacenter, with a memory of which ones are down. */
export class SupernodeSet {
  readonly #clients: Map<string, SupernodeClient>;
  readonly #urls: string[];
  readonly #downUntil = new Map<string, number>();
  readonly #downForMs: number;
  readonly #now: () => number;

  constructor(init: { urls: readonly string[]; downForMs?: number }, components: { now?: () => number } = {}) {
    this.#urls = [...new Set(init.urls.map(normalizeSupernodeUrl))];
    this.#clients = new Map(this.#urls.map((u) => [u, new SupernodeClient({ url: u })]));
    this.#downForMs = init.downForMs ?? SUPERNODE_DOWN_MS;
    this.#now = components.now ?? Date.now;
  }

  /** How many supernodes there are. */
  get size(): number {
    return this.#urls.length;
  }

  /** Every supernode's client, in configured order. */
  all(): SupernodeClient[] {
    return [...this.#clients.values()];
  }

  /** The supernodes in rendezvous rank for `key`, those marked down left out unless all are. */
  ranked(key: string): SupernodeClient[] {
    const now = this.#now();
    const all = rankSupernodes(key, this.#urls);
    const up = all.filter((u) => (this.#downUntil.get(u) ?? 0) <= now);
    return (up.length > 0 ? up : all).map((u) => this.#clients.get(u)!);
  }

  /** The supernode that serves `key` now: the first of `ranked(key)`. */
  ownerOf(key: string): SupernodeClient | undefined {
    return this.ranked(key)[0];
  }

  /**
   * `call` on the supernode ranked first for `key`, then on the next while
   * they are unavailable (each one that is gets marked down for a while).
   * Each try is bounded by `tryMs` when given (a try that times out counts
   * as unavailable). Any other failure, or the caller's abort, rejects at once.
   */
  async first<T>(key: string, call: (c: SupernodeClient, signal: AbortSignal) => Promise<T>, opts: { signal?: AbortSignal; tryMs?: number } = {}): Promise<T> {
    const caller = opts.signal ?? new AbortController().signal;
    let lastErr: unknown = new SupernodeCallError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", "no supernode configured");
    for (const c of this.ranked(key)) {
      const signal = opts.tryMs === undefined ? caller : AbortSignal.any([caller, AbortSignal.timeout(opts.tryMs)]);
      try {
        return await call(c, signal);
      } catch (err) {
        if (caller.aborted) throw caller.reason;
        const timedOut = signal.aborted;
        if (!timedOut && !unavailable(err)) throw err;
        this.markDown(c.url);
        lastErr = timedOut ? new SupernodeCallError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${c.url} did not answer in ${opts.tryMs} ms`, { cause: err }) : err;
      }
    }
    throw lastErr;
  }

  /** Skip supernode `url` in rankings for a while (it failed). */
  markDown(url: string): void {
    this.#downUntil.set(normalizeSupernodeUrl(url), this.#now() + this.#downForMs);
  }
}
