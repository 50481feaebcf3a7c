/**
 * The agent's side of the tracker: announce what this peer holds to every
 * supernode, report peers that served bad bytes, and ask which peers hold a
 * layer. Tracker calls are advisory: failures are logged, never thrown.
 */
import type { Logger } from "pino";
import type { Holder, PeerInfo } from "./messages.ts";
import type { SupernodeClient } from "./client.ts";
import type { SupernodeSet } from "./supernode-set.ts";

/** What this agent holds of one layer, for an announce: `chunks` is a base64 bitmap, absent when whole. */
export interface LayerHolding {
  digest: string;
  chunks?: string;
}

/** Time allowed for an announce or report to one supernode, ms. */
const POST_TIMEOUT_MS = 5_000;
/** Time allowed for a peers question to one supernode, ms. */
const PEERS_TIMEOUT_MS = 3_000;

/** See the module comment. */
export class TrackerClient {
  readonly #supernodes: SupernodeSet;
  readonly #log: Logger;

  constructor(components: { supernodes: SupernodeSet; logger: Logger }) {
    this.#supernodes = components.supernodes;
    this.#log = components.logger.child({ component: "tracker" });
  }

  /** Tell every supernode which layers and chunks `self` holds. */
  async announce(self: PeerInfo, holdings: readonly LayerHolding[]): Promise<void> {
    const chunks = Object.fromEntries(holdings.filter((h) => h.chunks !== undefined).map((h) => [h.digest, h.chunks!]));
    const a = { peerId: self.peerId, addrs: self.addrs, layers: holdings.map((h) => h.digest), chunks };
    await this.#toAll("announce", (c, signal) => c.announce(a, { signal }));
  }

  /** Tell every supernode that `peerId` served `self` bytes of `chunk` that failed their digest. */
  async report(self: string, peerId: string, chunk: string): Promise<void> {
    await this.#toAll("report", (c, signal) => c.report({ reporter: self, peerId, chunk }, { signal }));
  }

  /** Peers holding (part of) `layer` with their chunk bitmaps, from the first supernode (by rank for the layer) that answers; [] when none does. */
  async peers(layer: string): Promise<Holder[]> {
    for (const c of this.#supernodes.ranked(layer)) {
      try {
        return await c.peers(layer, { signal: AbortSignal.timeout(PEERS_TIMEOUT_MS) });
      } catch (err) {
        this.#log.debug({ supernode: c.url, layer, err: (err as Error).message }, "peers question failed; asking the next supernode");
      }
    }
    return [];
  }

  async #toAll(what: string, call: (c: SupernodeClient, signal: AbortSignal) => Promise<unknown>): Promise<void> {
    await Promise.all(this.#supernodes.all().map(async (c) => {
      try {
        await call(c, AbortSignal.timeout(POST_TIMEOUT_MS));
      } catch (err) {
        this.#log.debug({ supernode: c.url, call: what, err: (err as Error).message }, "tracker call failed");
      }
    }));
  }
}
