/** The other supernodes of the datacenter as this one sees them: asked for `/v1/health` every few seconds. */
import { HEALTH_PATH, normalizeSupernodeUrl } from "@shoal/swarm";
import { Interval, type Component } from "@shoal/service";

/** One other supernode's last answer. */
export interface PeerHealth {
  url: string;
  ok: boolean;
  /** Round trip of the last check, ms (absent before the first answer). */
  latencyMs?: number;
  /** When it was last checked, ms since the epoch (0: not yet). */
  checked: number;
  /** Why the last check failed. */
  error?: string;
}

const TIMEOUT_MS = 2_000;

/** Checks each of `peers` but `self` every `everyMs` (default 5 s). */
export class PeerHealthChecks implements Component {
  readonly #health = new Map<string, PeerHealth>();
  readonly #timer: Interval;

  constructor(init: { self: string; peers: readonly string[]; everyMs?: number }) {
    const self = normalizeSupernodeUrl(init.self);
    for (const p of init.peers.map(normalizeSupernodeUrl)) if (p !== self) this.#health.set(p, { url: p, ok: false, checked: 0 });
    this.#timer = new Interval(() => void this.checkAll(), init.everyMs ?? 5_000);
  }

  async start(): Promise<void> {
    void this.checkAll();
    await this.#timer.start();
  }

  async stop(): Promise<void> {
    await this.#timer.stop();
  }

  /** The last answers, in the order of `peers`. */
  list(): PeerHealth[] {
    return [...this.#health.values()].map((h) => ({ ...h }));
  }

  /** Check every other supernode now. */
  async checkAll(): Promise<void> {
    await Promise.all([...this.#health.keys()].map(async (url) => {
      const t0 = performance.now();
      let next: PeerHealth;
      try {
        const res = await fetch(`${url}${HEALTH_PATH}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
        await res.arrayBuffer();
        next = res.ok ? { url, ok: true, latencyMs: Math.round(performance.now() - t0), checked: Date.now() } : { url, ok: false, checked: Date.now(), error: `HTTP ${res.status}` };
      } catch (err) {
        next = { url, ok: false, checked: Date.now(), error: (err as Error).name === "TimeoutError" ? `no answer in ${TIMEOUT_MS} ms` : (err as Error).message };
      }
      this.#health.set(url, next);
    }));
  }
}
