import type { Chunk } from "@shoal/blockindex";
import { rankSupernodes } from "@shoal/supernode";
import type { Logger } from "pino";
import type { ChunkOrigin, RemoteLayer } from "./fetcher.ts";

/** A peer as the tracker lists it. */
export interface PeerInfo {
  peerId: string;
  addrs: string[];
}

/** The part of the libp2p chunk peer the agent uses. */
export interface ChunkPeerLike {
  readonly peerId: string;
  readonly addrs: string[];
  fetchChunk(peer: PeerInfo, digest: string, opts: { signal?: AbortSignal }): Promise<Uint8Array>;
}

const PEER_LIST_TTL_MS = 5_000;

/**
 * Tracker client: announces the layers this agent holds to every supernode,
 * and asks the supernode ranked first for a layer which peers hold it.
 */
export class Tracker {
  private readonly supernodes: string[];
  private readonly logger: Logger;

  constructor(components: { logger: Logger }, init: { supernodes: string[] }) {
    this.supernodes = init.supernodes.map((u) => u.replace(/\/+$/, ""));
    this.logger = components.logger.child({ component: "tracker" });
  }

  /** Tell every supernode which layers this peer holds. Failures are logged, not thrown. */
  async announce(self: PeerInfo, layers: string[]): Promise<void> {
    await Promise.all(this.supernodes.map(async (url) => {
      try {
        const res = await fetch(`${url}/v1/announce`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ peerId: self.peerId, addrs: self.addrs, layers }), signal: AbortSignal.timeout(5000),
        });
        await res.body?.cancel();
      } catch (err) {
        this.logger.debug({ supernode: url, err: (err as Error).message }, "announce failed");
      }
    }));
  }

  /** Peers holding `layer`, from the first supernode (by rank for the layer) that answers; [] when none does. */
  async peers(layer: string): Promise<PeerInfo[]> {
    for (const url of rankSupernodes(layer, this.supernodes)) {
      try {
        const res = await fetch(`${url}/v1/peers?layer=${encodeURIComponent(layer)}`, { signal: AbortSignal.timeout(3000) });
        if (res.status === 200) return (await res.json()) as PeerInfo[];
        await res.body?.cancel();
      } catch {
        // next supernode
      }
    }
    return [];
  }
}

/**
 * Neighbouring agents as a chunk source, over the libp2p chunk protocol.
 * The tracker says which peers hold a layer (refreshed every few seconds);
 * a chunk is asked of a random such peer, then of another. A peer whose
 * bytes fail verification is dropped for good and logged.
 */
export class PeerOrigin implements ChunkOrigin {
  readonly name = "peer";
  /** Peers dropped for serving bad bytes. */
  readonly dropped = new Set<string>();
  private readonly peer: ChunkPeerLike;
  private readonly tracker: Tracker;
  private readonly logger: Logger;
  private readonly lists = new Map<string, { at: number; peers: PeerInfo[]; refreshing?: Promise<void> }>();
  private readonly lastServer = new Map<string, string>();

  constructor(components: { peer: ChunkPeerLike; tracker: Tracker; logger: Logger }) {
    this.peer = components.peer;
    this.tracker = components.tracker;
    this.logger = components.logger.child({ component: "peers" });
  }

  private candidates(layer: string): PeerInfo[] {
    const entry = this.lists.get(layer);
    if (!entry || Date.now() - entry.at > PEER_LIST_TTL_MS) this.refresh(layer);
    return (entry?.peers ?? []).filter((p) => p.peerId !== this.peer.peerId && !this.dropped.has(p.peerId));
  }

  private refresh(layer: string): Promise<void> {
    const entry = this.lists.get(layer) ?? { at: 0, peers: [] };
    this.lists.set(layer, entry);
    entry.refreshing ??= this.tracker.peers(layer).then((peers) => {
      entry.peers = peers;
      entry.at = Date.now();
    }).finally(() => { entry.refreshing = undefined; });
    return entry.refreshing;
  }

  /** Wait for the first peer list of `layer` (used right after a mount). */
  async warm(layer: string): Promise<void> {
    await this.refresh(layer);
  }

  canServe(layer: RemoteLayer): boolean {
    return this.candidates(layer.digest).length > 0;
  }

  async fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    const digest = `sha256:${chunk.digest.toString("hex")}`;
    const peers = this.candidates(layer.digest).sort(() => Math.random() - 0.5).slice(0, 2);
    let lastErr: unknown = new Error("no peer holds this layer");
    for (const p of peers) {
      try {
        const bytes = await this.peer.fetchChunk(p, digest, { signal: opts.signal });
        this.lastServer.set(digest, p.peerId);
        return bytes;
      } catch (err) {
        lastErr = err;
        if (opts.signal.aborted) break;
      }
    }
    throw lastErr;
  }

  reportBad(_layer: RemoteLayer, chunk: Chunk): void {
    const digest = `sha256:${chunk.digest.toString("hex")}`;
    const peerId = this.lastServer.get(digest);
    if (!peerId || this.dropped.has(peerId)) return;
    this.dropped.add(peerId);
    this.logger.warn({ peer: peerId, chunk: digest }, "peer served a chunk that failed its digest; dropped");
  }
}
