import { ShoalError } from "@shoal/base";
import type { Chunk } from "@shoal/blockindex";
import type { ChunkOrigin, RemoteLayer } from "./fetcher.ts";
import { rankSupernodes } from "@shoal/supernode";
import { chunkAtBlobOffset } from "./chunk-at.ts";

/** A supernode answered with an error, or none could be reached. */
export class SupernodeError extends ShoalError {}

const DOWN_FOR_MS = 10_000;
/** Longest wait for a layer index from one supernode, ms. */
const INDEX_TIMEOUT_MS = 15_000;

/**
 * The datacenter supernodes as a chunk source. Each chunk belongs to the
 * supernode that ranks first for its digest by rendezvous hashing over the
 * configured list (the preheat split uses the same ranking); when that one
 * is down (connection refused, 5xx, timeout) it is skipped for 10 s and the
 * next in rank takes its share. Runs of adjacent chunks are split by owner.
 */
export class SupernodeOrigin implements ChunkOrigin {
  readonly name = "supernode";
  private readonly supernodes: string[];
  private readonly downUntil = new Map<string, number>();

  constructor(_components: object, init: { supernodes: string[] }) {
    this.supernodes = init.supernodes.map((u) => u.replace(/\/+$/, ""));
  }

  /** The supernodes in rendezvous rank for `key` (a chunk or layer digest), those marked down moved out unless all are. */
  private ranked(key: string): string[] {
    const now = Date.now();
    const all = rankSupernodes(key, this.supernodes);
    const up = all.filter((u) => (this.downUntil.get(u) ?? 0) <= now);
    return up.length > 0 ? up : all;
  }

  /** GET `path` of supernode `url`; one that is unreachable, times out (`tryMs`) or answers 5xx is marked down for a while. */
  private async get(url: string, path: string, signal: AbortSignal, tryMs?: number): Promise<Uint8Array> {
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, { signal: tryMs === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(tryMs)]) });
    } catch (err) {
      if (!signal.aborted) this.downUntil.set(url, Date.now() + DOWN_FOR_MS);
      throw new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${url} unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (res.status >= 500) {
      this.downUntil.set(url, Date.now() + DOWN_FOR_MS);
      await res.body?.cancel();
      throw new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${url} answered HTTP ${res.status}`);
    }
    if (res.status !== 200) {
      const text = (await res.text()).slice(0, 300);
      throw new SupernodeError("SHOAL_ERR_SUPERNODE_REJECTED", `supernode ${url} answered HTTP ${res.status}: ${text}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  }

  /** GET `path` of the supernode ranked first for `key`, then of the next while supernodes are unavailable. */
  private async fromRanked(key: string, path: string, signal: AbortSignal, tryMs?: number): Promise<Uint8Array> {
    let lastErr: unknown;
    for (const url of this.ranked(key)) {
      try {
        return await this.get(url, path, signal, tryMs);
      } catch (err) {
        lastErr = err;
        if (signal.aborted || (err instanceof SupernodeError && err.code !== "SHOAL_ERR_SUPERNODE_UNAVAILABLE")) throw err;
      }
    }
    throw lastErr ?? new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", "no supernode configured");
  }

  /** Chunks `first..last` of `layer` from their owner (the supernode ranked first for chunk `first`). */
  private chunks(layer: RemoteLayer, first: number, last: number, signal: AbortSignal): Promise<Uint8Array> {
    const path = `/v1/chunks/${layer.registry}/${layer.repository}/${layer.digest}?first=${first}&last=${last}`;
    return this.fromRanked(chunkKey(layer, first), path, signal);
  }

  /**
   * The index region of a lazy layer from the supernode that ranks first for
   * the layer (the next while one is down): the supernode reads it from the
   * origin once for every agent. Unverified: the caller checks `indexDigest`.
   */
  fetchIndex(layer: { registry: string; repository: string; digest: string }, indexDigest: string, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const path = `/v1/index/${layer.registry}/${layer.repository}/${layer.digest}?index=${indexDigest}`;
    return this.fromRanked(layer.digest, path, opts.signal ?? new AbortController().signal, INDEX_TIMEOUT_MS);
  }

  fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    return this.chunks(layer, chunk.index, chunk.index, opts.signal);
  }

  async fetchRange(layer: RemoteLayer, offset: number, length: number, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    const first = chunkAtBlobOffset(layer, offset);
    const last = chunkAtBlobOffset(layer, offset + length - 1);
    // split the run where the owning supernode changes
    const parts: Array<{ first: number; last: number; owner: string | undefined }> = [];
    for (let i = first; i <= last; i++) {
      const owner = this.ranked(chunkKey(layer, i))[0];
      const cur = parts.at(-1);
      if (cur && cur.owner === owner) cur.last = i;
      else parts.push({ first: i, last: i, owner });
    }
    const pieces = await Promise.all(parts.map((p) => this.chunks(layer, p.first, p.last, opts.signal)));
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }
}

/** The rendezvous key of chunk `i` of `layer`: its digest. */
function chunkKey(layer: RemoteLayer, i: number): string {
  return `sha256:${layer.index.chunk(i).digest.toString("hex")}`;
}
