import type { Chunk } from "@shoal/blockindex";
import { ShoalError } from "@shoal/blockindex";
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

  private ranked(chunk: Chunk): string[] {
    const now = Date.now();
    const all = rankSupernodes(`sha256:${chunk.digest.toString("hex")}`, this.supernodes);
    const up = all.filter((u) => (this.downUntil.get(u) ?? 0) <= now);
    return up.length > 0 ? up : all;
  }

  private async get(url: string, layer: RemoteLayer, first: number, last: number, signal: AbortSignal): Promise<Uint8Array> {
    const path = `/v1/chunks/${layer.registry}/${layer.repository}/${layer.digest}?first=${first}&last=${last}`;
    let res: Response;
    try {
      res = await fetch(`${url}${path}`, { signal });
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

  /** Ask the owner, then the next in rank while supernodes are down. */
  private async fromOwners(layer: RemoteLayer, first: number, last: number, signal: AbortSignal): Promise<Uint8Array> {
    let lastErr: unknown;
    for (const url of this.ranked(layer.index.chunk(first))) {
      try {
        return await this.get(url, layer, first, last, signal);
      } catch (err) {
        lastErr = err;
        if (signal.aborted || (err instanceof SupernodeError && err.code !== "SHOAL_ERR_SUPERNODE_UNAVAILABLE")) throw err;
      }
    }
    throw lastErr ?? new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", "no supernode configured");
  }

  /**
   * The index region of a lazy layer from the supernode that ranks first for
   * the layer (the next while one is down): the supernode reads it from the
   * origin once for every agent. Unverified: the caller checks `indexDigest`.
   */
  async fetchIndex(layer: { registry: string; repository: string; digest: string }, indexDigest: string, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    let lastErr: unknown;
    const now = Date.now();
    const all = rankSupernodes(layer.digest, this.supernodes);
    const up = all.filter((u) => (this.downUntil.get(u) ?? 0) <= now);
    for (const url of up.length > 0 ? up : all) {
      const signal = opts.signal ? AbortSignal.any([opts.signal, AbortSignal.timeout(INDEX_TIMEOUT_MS)]) : AbortSignal.timeout(INDEX_TIMEOUT_MS);
      try {
        const res = await fetch(`${url}/v1/index/${layer.registry}/${layer.repository}/${layer.digest}?index=${indexDigest}`, { signal });
        if (res.status === 200) return new Uint8Array(await res.arrayBuffer());
        const text = (await res.text()).slice(0, 300);
        lastErr = new SupernodeError(res.status >= 500 ? "SHOAL_ERR_SUPERNODE_UNAVAILABLE" : "SHOAL_ERR_SUPERNODE_REJECTED", `supernode ${url} answered HTTP ${res.status}: ${text}`);
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        lastErr = new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${url} unreachable: ${(err as Error).message}`, { cause: err });
      }
    }
    throw lastErr ?? new SupernodeError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", "no supernode configured");
  }

  fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    return this.fromOwners(layer, chunk.index, chunk.index, opts.signal);
  }

  async fetchRange(layer: RemoteLayer, offset: number, length: number, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    const first = chunkAtBlobOffset(layer, offset);
    const last = chunkAtBlobOffset(layer, offset + length - 1);
    // split the run where the owning supernode changes
    const parts: Array<[number, number]> = [];
    for (let i = first; i <= last; i++) {
      const owner = this.ranked(layer.index.chunk(i))[0];
      const cur = parts.at(-1);
      if (cur && this.ranked(layer.index.chunk(cur[0]))[0] === owner && cur[1] === i - 1) cur[1] = i;
      else parts.push([i, i]);
    }
    const pieces = await Promise.all(parts.map(([a, b]) => this.fromOwners(layer, a, b, opts.signal)));
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }
}
