/**
 * The agent's side of the tracker: announce what this peer holds to every
 * supernode, report peers that served bad bytes, and ask which peers hold a
 * layer. Announces and reports are sealed (`tracker-auth.ts`): signed with
 * the peer's own key and proven to come from a holder of the swarm key.
 * Tracker calls are advisory: failures are logged, never thrown; a
 * supernode refusing this peer as a member is logged once as a warning.
 */
import type { Logger } from "pino";
import type { Announcement, Holder, PeerReport } from "./messages.ts";
import { SupernodeCallError, type SupernodeClient } from "./client.ts";
import { sealTrackerMessage, type TrackerSigner } from "./tracker-auth.ts";
import type { SupernodeSet } from "./supernode-set.ts";

/** What this agent holds of one layer, for an announce: `chunks` is a base64 bitmap, absent when whole. */
export interface LayerHolding {
  digest: string;
  chunks?: string;
}

/** Time allowed for an announce or report to one supernode, ms. */
const POST_TIMEOUT_MS = 5_000;
/** Time allowed for a peers question to one supernode, ms (then the next is asked; none answering gives no peers). */
export const PEERS_TIMEOUT_MS = 3_000;

/** See the module comment. */
export class TrackerClient {
  readonly #supernodes: SupernodeSet;
  readonly #log: Logger;
  readonly #signer: TrackerSigner;
  readonly #membershipKey: Uint8Array;
  readonly #refusedBy = new Set<string>();

  /** `signer` signs in this peer's name; `membershipKey` is `trackerMembershipKey` of the swarm key. */
  constructor(components: { supernodes: SupernodeSet; logger: Logger; signer: TrackerSigner; membershipKey: Uint8Array }) {
    this.#supernodes = components.supernodes;
    this.#log = components.logger.child({ component: "tracker" });
    this.#signer = components.signer;
    this.#membershipKey = components.membershipKey;
  }

  /**
   * Tell every supernode which layers and chunks this peer, reachable at
   * `addrs`, holds; resolves the slowest pace any of them asked announces
   * to keep, ms (undefined when none said).
   */
  async announce(addrs: readonly string[], holdings: readonly LayerHolding[]): Promise<number | undefined> {
    const chunks = Object.fromEntries(holdings.filter((h) => h.chunks !== undefined).map((h) => [h.digest, h.chunks!]));
    const a: Announcement = { peerId: this.#signer.peerId, addrs: [...addrs], layers: holdings.map((h) => h.digest), chunks };
    const sealed = await sealTrackerMessage("announce", a, this.#signer, this.#membershipKey);
    let pace: number | undefined;
    await this.#toAll("announce", async (c, signal) => {
      const { paceMs } = await c.announce(sealed, { signal });
      if (paceMs !== undefined) pace = Math.max(pace ?? 0, paceMs);
    });
    return pace;
  }

  /** Tell every supernode that `peerId` served this peer bytes of `chunk` that failed their digest. */
  async report(peerId: string, chunk: string): Promise<void> {
    const r: PeerReport = { reporter: this.#signer.peerId, peerId, chunk };
    const sealed = await sealTrackerMessage("report", r, this.#signer, this.#membershipKey);
    await this.#toAll("report", (c, signal) => c.report(sealed, { signal }));
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
        if (err instanceof SupernodeCallError && err.remoteCode === "SHOAL_ERR_NOT_SWARM_MEMBER" && !this.#refusedBy.has(c.url)) {
          this.#refusedBy.add(c.url);
          this.#log.warn({ supernode: c.url, err: err.message }, "the supernode's tracker does not take this peer as a member of its swarm (same --swarm-key on both?); peers will not find this host through it");
          return;
        }
        this.#log.debug({ supernode: c.url, call: what, err: (err as Error).message }, "tracker call failed");
      }
    }));
  }
}
