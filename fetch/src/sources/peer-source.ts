/** Neighbouring agents as a chunk source, over the libp2p chunk protocol. */
import { ShoalError } from "@shoal/base";
import { chunkDigest } from "@shoal/blockindex";
import { bitmapHas, type Holder, type PeerInfo } from "@shoal/swarm";
import type { Logger } from "pino";
import { checkRun, type ChunkSource, type FetchChunksOptions } from "../chunk-source.ts";
import type { RemoteLayer } from "../remote-layer.ts";

/** The part of the libp2p chunk peer (`@shoal/p2p` `ChunkPeer`) the source uses. */
export interface ChunkPeerLike {
  readonly peerId: string;
  readonly addrs: string[];
  /** Most chunks one `fetchChunks` may ask for (the protocol's limit). */
  readonly maxChunksPerRequest: number;
  fetchChunk(peer: PeerInfo, digest: string, opts: { signal?: AbortSignal }): Promise<Uint8Array>;
  /** Several chunks in one request; undefined for each the peer does not hold. */
  fetchChunks(peer: PeerInfo, digests: string[], opts: { signal?: AbortSignal }): Promise<Array<Uint8Array | undefined>>;
}

/** Who holds what, and where to report liars: the tracker (`@shoal/swarm` `TrackerClient`). */
export interface PeerDirectory {
  /** Peers holding (part of) `layer`, with their chunk bitmaps; [] when nobody can say. */
  peers(layer: string): Promise<Holder[]>;
  /** `peerId` served this peer bytes of chunk digest `chunk` that failed their digest. */
  report(peerId: string, chunk: string): Promise<void>;
}

/**
 * Whom to ask for which chunks of a run `ids`, among `holders` (each with
 * its bitmap; none means all): one random holder of the whole run, else a
 * random holder of each chunk, grouped by holder. A chunk nobody holds:
 * that chunk's index. Decided apart from asking (the fleet simulator calls it too).
 */
export function planPeerRun(holders: readonly Holder[], ids: readonly number[], random: () => number = Math.random): Map<Holder, number[]> | number {
  const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(random() * xs.length)];
  const holds = (p: Holder, i: number) => !p.bits || bitmapHas(p.bits, i);
  const whole = pick(holders.filter((p) => ids.every((i) => holds(p, i))));
  if (whole) return new Map([[whole, [...ids]]]);
  const plan = new Map<Holder, number[]>();
  for (const i of ids) {
    const p = pick(holders.filter((h) => holds(h, i)));
    if (!p) return i;
    plan.set(p, [...(plan.get(p) ?? []), i]);
  }
  return plan;
}

/** How long a layer's list of holders is used before it is asked again, ms: bitmaps grow fast while a swarm starts. */
export const PEER_LIST_TTL_MS = 1_000;

/**
 * How long a peer that could not be reached (`SHOAL_ERR_PEER_UNAVAILABLE`:
 * the dial or the transfer failed or ran out of time) is left out of the
 * holders, ms. On a loaded host a dial can take a fetch's whole deadline,
 * and every run planned to that peer meanwhile would wait as long (a real
 * 16-host run: 112 runs in 7 s, all to the supernode's seed).
 */
export const UNREACHABLE_SET_ASIDE_MS = 5_000;

/**
 * Neighbouring agents as a chunk source, over the libp2p chunk protocol.
 * The tracker says which peers hold which chunks of a layer (refreshed
 * every second while in use); a chunk is asked only of peers that hold it,
 * a random one, then another. A run of adjacent chunks goes in one request
 * to one peer holding all of them, else in one request per peer to holders
 * of each. A peer whose bytes fail verification is dropped for good,
 * logged, and reported to the supernodes (whose trackers stop listing a
 * peer several others reported); one that could not be reached is left
 * out for `UNREACHABLE_SET_ASIDE_MS`.
 */
export class PeerSource implements ChunkSource {
  readonly name = "peer";
  /** Peers dropped for serving bad bytes. */
  private readonly dropped = new Set<string>();
  private readonly peer: ChunkPeerLike;
  private readonly tracker: PeerDirectory;
  private readonly logger: Logger;
  private readonly lists = new Map<string, { at: number; peers: Holder[]; refreshing?: Promise<void> }>();
  private readonly lastServer = new Map<string, string>();
  /** Peers that could not be reached, until when (`Date.now()`) they are left out. */
  private readonly unreachable = new Map<string, number>();

  constructor(components: { peer: ChunkPeerLike; tracker: PeerDirectory; logger: Logger }) {
    this.peer = components.peer;
    this.tracker = components.tracker;
    this.logger = components.logger.child({ component: "peers" });
  }

  /** Peers dropped for serving bytes that failed verification, for status. */
  droppedPeers(): string[] {
    return [...this.dropped];
  }

  /**
   * Ask the tracker for `layer`'s holders now unless a fresh list is known,
   * and wait for the answer up to `maxWaitMs`: for a caller about to read a
   * whole layer at once (the registry mirror), whose first requests would
   * otherwise go out before any list arrived.
   */
  async warm(layer: string, maxWaitMs = 500): Promise<void> {
    const entry = this.lists.get(layer);
    if (entry && Date.now() - entry.at <= PEER_LIST_TTL_MS) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.refresh(layer).catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, maxWaitMs)))]);
    clearTimeout(timer);
  }

  /** Peers holding chunk `chunk` of `layer` (any part of it when undefined), by the last list the tracker gave. */
  private candidates(layer: string, chunk?: number): Holder[] {
    const entry = this.lists.get(layer);
    if (!entry || Date.now() - entry.at > PEER_LIST_TTL_MS) void this.refresh(layer);
    return (entry?.peers ?? []).filter((p) => p.peerId !== this.peer.peerId && !this.dropped.has(p.peerId) && !this.setAside(p.peerId) && (chunk === undefined || !p.bits || bitmapHas(p.bits, chunk)));
  }

  /** True while `peerId` is left out for having been unreachable. */
  private setAside(peerId: string): boolean {
    const until = this.unreachable.get(peerId);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.unreachable.delete(peerId);
    return false;
  }

  /** A call to `p` failed with `err`: an unreachable peer is left out for a while. */
  private failed(p: Holder, err: unknown): void {
    if (!(err instanceof ShoalError) || err.code !== "SHOAL_ERR_PEER_UNAVAILABLE" || this.setAside(p.peerId)) return;
    this.unreachable.set(p.peerId, Date.now() + UNREACHABLE_SET_ASIDE_MS);
    this.logger.debug({ peer: p.peerId, err: err.message, forMs: UNREACHABLE_SET_ASIDE_MS }, "peer unreachable; left out of the holders for a while");
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

  /**
   * A single chunk from one random holder, then another; a run from one
   * peer holding all of it, else from a holder per chunk. A run's chunks
   * stream (`onChunk`) as each holder's answer comes, and every holder is
   * waited for before a failure is thrown: what the others sent is kept
   * (a busy holder among several costs only its own chunks).
   */
  async fetchChunks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]> {
    checkRun(layer, first, last);
    if (first === last) return [await this.fetchOne(layer, first, opts.signal)];
    const ids = Array.from({ length: last - first + 1 }, (_, k) => first + k);
    const plan = planPeerRun(this.candidates(layer.digest), ids);
    if (typeof plan === "number") throw new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `no peer holds chunk ${plan} of ${layer.digest}`);
    const parts = new Map<number, Uint8Array>();
    const asked = await Promise.allSettled([...plan].map(async ([p, want]) => {
      for (let k = 0; k < want.length; k += this.peer.maxChunksPerRequest) {
        const batch = want.slice(k, k + this.peer.maxChunksPerRequest);
        const digests = batch.map((i) => chunkDigest(layer.index.chunk(i)));
        const got = await this.peer.fetchChunks(p, digests, { signal: opts.signal }).catch((err: unknown) => {
          this.failed(p, err);
          throw err;
        });
        let lacking: number | undefined;
        got.forEach((bytes, j) => {
          const i = batch[j]!;
          if (!bytes) return void (lacking ??= i);
          parts.set(i, bytes);
          this.lastServer.set(digests[j]!, p.peerId);
          opts.onChunk?.(i - first, bytes);
        });
        if (lacking !== undefined) throw new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `peer ${p.peerId} does not hold chunk ${lacking} of ${layer.digest}`);
      }
    }));
    const failed = asked.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    return ids.map((i) => parts.get(i)!);
  }

  private async fetchOne(layer: RemoteLayer, i: number, signal: AbortSignal): Promise<Uint8Array> {
    const digest = chunkDigest(layer.index.chunk(i));
    const peers = this.candidates(layer.digest, i).sort(() => Math.random() - 0.5).slice(0, 2);
    let lastErr: unknown = new ShoalError("SHOAL_ERR_PEER_NOT_FOUND", `no peer holds chunk ${i} of ${layer.digest}`);
    for (const p of peers) {
      try {
        const bytes = await this.peer.fetchChunk(p, digest, { signal });
        this.lastServer.set(digest, p.peerId);
        return bytes;
      } catch (err) {
        lastErr = err;
        this.failed(p, err);
        if (signal.aborted) throw signal.reason;
      }
    }
    throw lastErr;
  }

  reportBad(layer: RemoteLayer, chunk: number): void {
    const digest = chunkDigest(layer.index.chunk(chunk));
    const peerId = this.lastServer.get(digest);
    if (!peerId || this.dropped.has(peerId)) return;
    this.dropped.add(peerId);
    this.logger.warn({ peer: peerId, chunk: digest }, "peer served a chunk that failed its digest; dropped and reported");
    void this.tracker.report(peerId, digest);
  }
}
