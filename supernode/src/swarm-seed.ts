/**
 * The supernode as a member of the agents' peer swarm: a libp2p chunk peer
 * (same swarm key) that serves the chunks in its cache, and lists itself to
 * agents as a holder of the chunks of every layer whose index it has read.
 */
import { type LayerHolder, bitmapHas, chunkHolding, decodeChunkBitmap } from "@shoal/swarm";
import { ChunkPeer, type SwarmKey } from "@shoal/p2p";
import type { Logger } from "pino";
import { chunkDigest } from "@shoal/blockindex";
import type { IndexCache } from "./index-cache.ts";
import { LruMap } from "@shoal/base";
import { MAX_INDEXES_IN_MEMORY } from "./constants.ts";

/** Settings of the supernode's swarm membership. */
export interface SwarmSeedInit {
  /** The cluster's pre-shared key (swarm.key bytes or parsed). */
  swarmKey: SwarmKey | Uint8Array;
  /** libp2p listen multiaddrs. */
  listen: string[];
  /** File holding the node's private key (stable peer id across restarts). */
  keyFile: string;
  /** Upload cap, bytes per second. */
  uploadRate?: number;
  /** Concurrent uploads before "busy". */
  maxUploads?: number;
}

/** How long a layer's bitmap of cached chunks is reused, ms. */
const HOLDING_TTL_MS = 1_000;

/** A started chunk peer serving the supernode's cache; see the module comment. */
export class SwarmSeed {
  readonly #peer: ChunkPeer;
  readonly #indexes: IndexCache;
  readonly #has: (digest: string) => boolean;
  /** Per layer: when computed, how many chunks are cached, and the bitmap when not all. */
  readonly #holdings = new LruMap<string, { at: number; count: number; bits?: { text: string; raw: Uint8Array } }>({ maxEntries: MAX_INDEXES_IN_MEMORY });

  private constructor(peer: ChunkPeer, indexes: IndexCache, has: (digest: string) => boolean) {
    this.#peer = peer;
    this.#indexes = indexes;
    this.#has = has;
  }

  /** Start the chunk peer. */
  static async start(components: { cache: { has(digest: string): boolean; readCompressed(digest: string, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> }; indexes: IndexCache; logger: Logger }, init: SwarmSeedInit): Promise<SwarmSeed> {
    const peer = new ChunkPeer({ provider: components.cache, logger: components.logger.child({ component: "p2p" }) }, {
      swarmKey: init.swarmKey,
      listen: init.listen,
      keyFile: init.keyFile,
      ...(init.uploadRate !== undefined ? { uploadRate: init.uploadRate } : {}),
      ...(init.maxUploads !== undefined ? { maxUploads: init.maxUploads } : {}),
    });
    await peer.start();
    return new SwarmSeed(peer, components.indexes, (d) => components.cache.has(d));
  }

  get peerId(): string {
    return this.#peer.peerId;
  }

  get addrs(): string[] {
    return this.#peer.addrs;
  }

  /** Upload counters and connected peers, for metrics. */
  stats(): { bytesUploaded: number; connected: number } {
    return { bytesUploaded: this.#peer.stats().bytesUploaded, connected: this.#peer.connectedPeers() };
  }

  /**
   * This supernode as a holder of `layer` (of chunk `chunk` when given) for
   * tracker answers, or undefined when it holds none of it (or its index
   * is not loaded here).
   */
  holder(layer: string, chunk?: number): LayerHolder | undefined {
    const cached = this.#indexes.peek(layer);
    if (!cached) return undefined;
    let h = this.#holdings.get(layer);
    if (!h || Date.now() - h.at > HOLDING_TTL_MS) {
      const { held, bitmap } = chunkHolding(cached.index.chunkCount, (i) => this.#has(chunkDigest(cached.index.chunk(i))));
      h = { at: Date.now(), count: held, ...(bitmap !== undefined ? { bits: { text: bitmap, raw: decodeChunkBitmap(bitmap) } } : {}) };
      this.#holdings.set(layer, h);
    }
    if (h.count === 0) return undefined;
    if (chunk !== undefined && h.bits && !bitmapHas(h.bits.raw, chunk)) return undefined;
    return { peerId: this.peerId, addrs: this.addrs, ...(h.bits ? { chunks: h.bits.text } : {}) };
  }

  async stop(): Promise<void> {
    await this.#peer.stop();
  }
}
