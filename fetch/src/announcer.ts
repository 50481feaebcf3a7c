/**
 * The agent's announce schedule: it tells the tracker which chunks of which
 * layers it holds, at once when its mounts change, at most once a second
 * while chunks arrive, and at least every ten seconds (the tracker forgets
 * peers that stay silent). A tracker with many peers asks for a slower pace
 * (`announcePaceMs`): new chunks are then announced at most once per pace,
 * and an unchanged holding at least once per pace or ten seconds, whichever
 * is longer. One announce is in flight at a time.
 */
import { chunkHolding, ANNOUNCE_CHANGED_MS, ANNOUNCE_EVERY_MS, type LayerHolding, type PeerInfo, type TrackerClient } from "@shoal/swarm";
import type { RemoteLayer } from "./remote-layer.ts";

/**
 * What to announce for `layers`: each layer of which at least one chunk is
 * held (`has`), with a bitmap of the chunks held unless it is held whole.
 */
export function holdings(layers: readonly RemoteLayer[], has: (layer: RemoteLayer, chunk: number) => boolean): LayerHolding[] {
  const out: LayerHolding[] = [];
  for (const layer of layers) {
    const { held, bitmap } = chunkHolding(layer.index.chunkCount, (i) => has(layer, i));
    if (held > 0) out.push(bitmap === undefined ? { digest: layer.digest } : { digest: layer.digest, chunks: bitmap });
  }
  return out;
}

/** What the announcer reads of the agent. */
export interface AnnouncerComponents {
  tracker: TrackerClient;
  /** This peer as others dial it. */
  self: PeerInfo;
  /** The layers of every mounted image. */
  layers(): readonly RemoteLayer[];
  /** True when chunk `i` of `layer` is held, verified. */
  has(layer: RemoteLayer, i: number): boolean;
  /** A number that changes whenever chunks arrive or leave (the store's chunk count). */
  version(): number;
}

/** See the module comment. A component: `start` announces once and starts the schedule; `stop` ends it. */
export class Announcer {
  readonly #c: AnnouncerComponents;
  readonly #changedMs: number;
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;
  #lastVersion = Number.NaN;
  #lastAt = 0;
  /** The pace the trackers last asked for, ms (0: none). */
  #paceMs = 0;
  /** The announce in flight (one at a time: a tracker takes a peer's announces only in the order they were signed). */
  #sending: Promise<void> | undefined;
  /** The mounts changed while one was in flight: announce again once it ends. */
  #again = false;

  constructor(components: AnnouncerComponents, init: { changedMs?: number; everyMs?: number } = {}) {
    this.#c = components;
    this.#changedMs = init.changedMs ?? ANNOUNCE_CHANGED_MS;
    this.#everyMs = init.everyMs ?? ANNOUNCE_EVERY_MS;
  }

  async start(): Promise<void> {
    await this.announce();
    this.#timer ??= setInterval(() => {
      const since = Date.now() - this.#lastAt;
      const changed = this.#c.version() !== this.#lastVersion;
      if (this.#sending) return;
      if ((changed && since >= this.#paceMs) || since >= Math.max(this.#everyMs, this.#paceMs)) void this.announce();
    }, this.#changedMs).unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Announce now (the mounts changed); while one is in flight, once more
   * after it: never two at once, since a tracker refuses an announce signed
   * before the last it took as a replay, and two sent together may arrive
   * in either order. Resolves when what was asked is sent. Failures are
   * logged by the tracker client.
   */
  announce(): Promise<void> {
    if (this.#sending) {
      this.#again = true;
      return this.#sending;
    }
    this.#sending = (async () => {
      do {
        this.#again = false;
        await this.#announceOnce();
      } while (this.#again);
    })().finally(() => (this.#sending = undefined));
    return this.#sending;
  }

  async #announceOnce(): Promise<void> {
    this.#lastVersion = this.#c.version();
    this.#lastAt = Date.now();
    const pace = await this.#c.tracker.announce(this.#c.self.addrs, holdings(this.#c.layers(), (l, i) => this.#c.has(l, i)));
    if (pace !== undefined) this.#paceMs = pace;
  }

  /** The pace the trackers last asked announces to keep, ms (0 before any asked). */
  paceMs(): number {
    return this.#paceMs;
  }
}
