import { ShoalError } from "@shoal/base";
import type { Chunk } from "@shoal/blockindex";
import { bitmapHas, chunkHolding, decodeChunkBitmap, rankSupernodes } from "@shoal/supernode";
import type { Logger } from "pino";
import { chunkAtBlobOffset } from "./chunk-at.ts";
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
  /** Several chunks in one request; undefined for each the peer does not hold. */
  fetchChunks(peer: PeerInfo, digests: string[], opts: { signal?: AbortSignal }): Promise<Array<Uint8Array | undefined>>;
}

/** Most chunks asked of one peer in one request (the p2p protocol's limit). */
const MAX_CHUNKS_PER_PEER_REQUEST = 32;

/** A peer holding (part of) a layer: `bits` is its chunk bitmap, absent when it holds the whole layer. */
export interface Holder extends PeerInfo {
  bits?: Uint8Array;
}

/** What this agent holds of one layer, for an announce: `chunks` is a base64 bitmap, absent when whole. */
export interface LayerHolding {
  digest: string;
  chunks?: string;
}

/** Announce at most this often while chunks arrive, ms. */
export const ANNOUNCE_CHANGED_MS = 1_000;
/** Announce at least this often (the tracker forgets peers that stay silent), ms. */
export const ANNOUNCE_EVERY_MS = 10_000;

/**
 * What to announce for `layers`: each layer of which at least one chunk is
 * held (`has`), with a bitmap of the chunks held unless it is held whole.
 */
export function holdings(layers: RemoteLayer[], has: (layer: RemoteLayer, chunk: number) => boolean): LayerHolding[] {
  const out: LayerHolding[] = [];
  for (const layer of layers) {
    const { held, bitmap } = chunkHolding(layer.index.chunkCount, (i) => has(layer, i));
    if (held > 0) out.push(bitmap === undefined ? { digest: layer.digest } : { digest: layer.digest, chunks: bitmap });
  }
  return out;
}

/** How long a layer's list of holders is used before it is asked again, ms: bitmaps grow fast while a swarm starts. */
const PEER_LIST_TTL_MS = 1_000;

/**
 * Tracker client: announces the layers (and chunk bitmaps) this agent holds
 * to every supernode, and asks the supernode ranked first for a layer which
 * peers hold which of its chunks.
 */
export class Tracker {
  private readonly supernodes: string[];
  private readonly logger: Logger;

  constructor(components: { logger: Logger }, init: { supernodes: string[] }) {
    this.supernodes = init.supernodes.map((u) => u.replace(/\/+$/, ""));
    this.logger = components.logger.child({ component: "tracker" });
  }

  /** Tell every supernode which layers and chunks this peer holds. Failures are logged, not thrown. */
  async announce(self: PeerInfo, holdings: LayerHolding[]): Promise<void> {
    const chunks = Object.fromEntries(holdings.filter((h) => h.chunks !== undefined).map((h) => [h.digest, h.chunks]));
    await this.postToAll("/v1/announce", { peerId: self.peerId, addrs: self.addrs, layers: holdings.map((h) => h.digest), chunks });
  }

  /** Tell every supernode that `peerId` served this peer bytes of `chunk` that failed their digest. Failures are logged, not thrown. */
  async report(self: string, peerId: string, chunk: string): Promise<void> {
    await this.postToAll("/v1/report", { reporter: self, peerId, chunk });
  }

  /** POST `body` as JSON to `path` of every supernode (5 s each); failures are logged at debug level. */
  private async postToAll(path: string, body: unknown): Promise<void> {
    const json = JSON.stringify(body);
    await Promise.all(this.supernodes.map(async (url) => {
      try {
        const res = await fetch(`${url}${path}`, {
          method: "POST", headers: { "content-type": "application/json" }, body: json, signal: AbortSignal.timeout(5000),
        });
        await res.body?.cancel();
      } catch (err) {
        this.logger.debug({ supernode: url, path, err: (err as Error).message }, "supernode call failed");
      }
    }));
  }

  /** Peers holding (part of) `layer` with their chunk bitmaps, from the first supernode (by rank for the layer) that answers; [] when none does. */
  async peers(layer: string): Promise<Holder[]> {
    for (const url of rankSupernodes(layer, this.supernodes)) {
      try {
        const res = await fetch(`${url}/v1/peers?layer=${encodeURIComponent(layer)}`, { signal: AbortSignal.timeout(3000) });
        if (res.status === 200) {
          const list = (await res.json()) as Array<PeerInfo & { chunks?: string }>;
          return list.map(({ chunks, ...p }) => (chunks === undefined ? p : { ...p, bits: decodeChunkBitmap(chunks) }));
        }
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
 * The tracker says which peers hold which chunks of a layer (refreshed
 * every second while in use); a chunk is asked only of peers that hold it,
 * a random one, then another. A run of adjacent chunks goes in one request
 * to one peer holding all of them, else in one request per peer to holders
 * of each. A peer whose bytes fail verification is dropped for good,
 * logged, and reported to the supernodes (whose trackers stop listing a
 * peer several others reported).
 */
export class PeerOrigin implements ChunkOrigin {
  readonly name = "peer";
  /** Peers dropped for serving bad bytes. */
  readonly dropped = new Set<string>();
  private readonly peer: ChunkPeerLike;
  private readonly tracker: Tracker;
  private readonly logger: Logger;
  private readonly lists = new Map<string, { at: number; peers: Holder[]; refreshing?: Promise<void> }>();
  private readonly lastServer = new Map<string, string>();

  constructor(components: { peer: ChunkPeerLike; tracker: Tracker; logger: Logger }) {
    this.peer = components.peer;
    this.tracker = components.tracker;
    this.logger = components.logger.child({ component: "peers" });
  }

  /** Peers holding chunk `chunk` of `layer` (any part of it when undefined), by the last list the tracker gave. */
  private candidates(layer: string, chunk?: number): Holder[] {
    const entry = this.lists.get(layer);
    if (!entry || Date.now() - entry.at > PEER_LIST_TTL_MS) void this.refresh(layer);
    return (entry?.peers ?? []).filter((p) => p.peerId !== this.peer.peerId && !this.dropped.has(p.peerId) && (chunk === undefined || !p.bits || bitmapHas(p.bits, chunk)));
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

  canServe(layer: RemoteLayer, chunk?: number): boolean {
    return this.candidates(layer.digest, chunk).length > 0;
  }

  async fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    const digest = `sha256:${chunk.digest.toString("hex")}`;
    const peers = this.candidates(layer.digest, chunk.index).sort(() => Math.random() - 0.5).slice(0, 2);
    let lastErr: unknown = new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `no peer holds chunk ${chunk.index} of ${layer.digest}`);
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

  async fetchRange(layer: RemoteLayer, offset: number, length: number, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    const first = chunkAtBlobOffset(layer, offset);
    const last = chunkAtBlobOffset(layer, offset + length - 1);
    const ids = Array.from({ length: last - first + 1 }, (_, k) => first + k);
    const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];
    // one peer for the whole run if one holds it all, else a holder per chunk
    const plan = new Map<Holder, number[]>();
    const whole = pick(this.candidates(layer.digest).filter((p) => ids.every((i) => !p.bits || bitmapHas(p.bits, i))));
    if (whole) plan.set(whole, ids);
    else {
      for (const i of ids) {
        const p = pick(this.candidates(layer.digest, i));
        if (!p) throw new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `no peer holds chunk ${i} of ${layer.digest}`);
        plan.set(p, [...(plan.get(p) ?? []), i]);
      }
    }
    const parts = new Map<number, Uint8Array>();
    await Promise.all([...plan].map(async ([p, want]) => {
      for (let k = 0; k < want.length; k += MAX_CHUNKS_PER_PEER_REQUEST) {
        const batch = want.slice(k, k + MAX_CHUNKS_PER_PEER_REQUEST);
        const digests = batch.map((i) => `sha256:${layer.index.chunk(i).digest.toString("hex")}`);
        const got = await this.peer.fetchChunks(p, digests, { signal: opts.signal });
        got.forEach((bytes, j) => {
          if (!bytes) throw new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `peer ${p.peerId} does not hold chunk ${batch[j]} of ${layer.digest}`);
          parts.set(batch[j]!, bytes);
          this.lastServer.set(digests[j]!, p.peerId);
        });
      }
    }));
    return Buffer.concat(ids.map((i) => parts.get(i)!));
  }

  reportBad(_layer: RemoteLayer, chunk: Chunk): void {
    const digest = `sha256:${chunk.digest.toString("hex")}`;
    const peerId = this.lastServer.get(digest);
    if (!peerId || this.dropped.has(peerId)) return;
    this.dropped.add(peerId);
    this.logger.warn({ peer: peerId, chunk: digest }, "peer served a chunk that failed its digest; dropped and reported");
    void this.tracker.report(this.peer.peerId, peerId, digest);
  }
}
