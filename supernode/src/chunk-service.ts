/**
 * Chunks of lazy layers: from the chunk store, else from the origin with
 * single-flight (one origin request per chunk however many callers ask at
 * once; adjacent missing chunks of one call in one range request), verified
 * against the layer index before they are cached or served. A caller's
 * background request (an agent's prefetch) waits before its origin fetch
 * while callers who wait are fetching from the origin (up to
 * `MAX_YIELD_MS`), and goes at once when one of them asks for a chunk of it.
 */
import { type Credentials, type RegistryClients } from "@shoal/oci";
import { MAX_CHUNKS_PER_REQUEST, type LayerRef } from "@shoal/swarm";
import { DemandActivity, DigestMismatchError, RangeSplitter, untilAborted, BadRequestError, ShoalError, yieldTo } from "@shoal/base";
import { chunkDigest, chunkMatches, type Chunk, type LayerIndex } from "@shoal/blockindex";
import type { Logger } from "pino";
import { DEFAULT_MAX_RANGE_BYTES } from "./constants.ts";
import type { AccessCheck } from "./access.ts";
import type { CachedIndex, IndexCache, IndexHint } from "./index-cache.ts";

/** The narrow chunk-store surface the service needs (`ChunkStore` satisfies it). */
export interface CompressedChunkStore {
  has(digest: string): boolean;
  putCompressed(digest: string, compressed: Uint8Array, rawSize: number, opts?: { signal?: AbortSignal; verified?: boolean }): Promise<void>;
  readCompressed(digest: string, opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
}

/** Counters the service reports to (metrics). All optional. */
export interface ChunkServiceObserver {
  originBytes?(bytes: number): void;
  cacheHit?(bytes: number): void;
  cacheMiss?(bytes: number): void;
}

/** Settings of a `ChunkService`. */
export interface ChunkServiceInit {
  maxChunksPerRequest?: number;
  maxRangeBytes?: number;
}

/** Options of one chunk request. */
export interface ChunkRequestOptions {
  signal?: AbortSignal;
  credentials?: Credentials;
  hint?: IndexHint;
  /** Nobody waits for it (an agent's prefetch): its origin fetches yield to those of callers who wait. */
  background?: boolean;
}

/** How long origin fetches for waiting callers keep background ones back after they start, ms. */
export const QUIET_MS = 500;
/** Longest a background origin fetch waits for them, ms. */
export const MAX_YIELD_MS = 2000;

interface Deferred {
  promise: Promise<Buffer>;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

function deferred(): Deferred {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers may have gone; never let a rejection go unhandled.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/** Serves and caches chunks; see the module comment. */
export class ChunkService {
  readonly #indexes: IndexCache;
  readonly #cache: CompressedChunkStore;
  readonly #origins: RegistryClients;
  readonly #observer: ChunkServiceObserver;
  readonly #log: Logger;
  readonly #maxChunks: number;
  readonly #maxRange: number;
  readonly #inflight = new Map<string, Promise<Buffer>>();
  /** Origin fetches for callers who wait: background ones yield to them. */
  readonly #demand = new DemandActivity();
  /** Chunks of background runs waiting to start: what starts each at once. */
  readonly #parked = new Map<string, () => void>();
  readonly #work = new Set<Promise<unknown>>();
  readonly #lifetime = new AbortController();
  readonly #access: AccessCheck | undefined;

  constructor(
    components: { indexes: IndexCache; cache: CompressedChunkStore; origins: RegistryClients; logger: Logger; observer?: ChunkServiceObserver; access?: AccessCheck },
    init: ChunkServiceInit = {},
  ) {
    this.#indexes = components.indexes;
    this.#access = components.access;
    this.#cache = components.cache;
    this.#origins = components.origins;
    this.#observer = components.observer ?? {};
    this.#log = components.logger.child({ component: "chunks" });
    this.#maxChunks = init.maxChunksPerRequest ?? MAX_CHUNKS_PER_REQUEST;
    this.#maxRange = init.maxRangeBytes ?? DEFAULT_MAX_RANGE_BYTES;
  }

  /** The layer's index (see `IndexCache.get`). */
  index(layer: LayerRef, opts: ChunkRequestOptions = {}): Promise<LayerIndex> {
    return this.#indexes.get(layer, opts).then((c) => c.index);
  }

  /**
   * The raw index region of `layer` (what the agents decode), read from the
   * origin once for every agent. Same access check as `getChunks`.
   */
  async getIndex(layer: LayerRef, opts: ChunkRequestOptions = {}): Promise<CachedIndex> {
    await this.#access?.check(layer, opts.credentials, opts.signal ? { signal: opts.signal } : {});
    return this.#indexes.get(layer, opts);
  }

  /**
   * Compressed bytes of chunks `first..last` (inclusive, 0-based chunk table
   * positions) of `layer`, in order. `SHOAL_ERR_CHUNK_RANGE` when
   * `first > last` or `last` is not below the chunk count; `BadRequestError`
   * when more than `maxChunksPerRequest` chunks are asked for. Aborting
   * `signal` abandons the wait, not the shared origin fetch. With an
   * `AccessCheck`, the caller's credentials must let it read the layer
   * (checked with the registry, remembered for a while) even for cached chunks.
   */
  async getChunks(layer: LayerRef, first: number, last: number, opts: ChunkRequestOptions = {}): Promise<Buffer[]> {
    const { parts } = await this.streamChunks(layer, first, last, opts);
    return untilAborted(Promise.all(parts), opts.signal);
  }

  /**
   * As `getChunks`, but answered as soon as the request is checked: each
   * chunk's length (from the index) and a promise of its bytes, which
   * resolves once that chunk is here (from the cache, or verified from the
   * origin as the range arrives), so a caller can send chunk after chunk
   * while the rest are still on their way. Every part's promise is handled
   * (none rejects unhandled).
   */
  async streamChunks(layer: LayerRef, first: number, last: number, opts: ChunkRequestOptions = {}): Promise<{ lengths: number[]; parts: Promise<Buffer>[] }> {
    await this.#access?.check(layer, opts.credentials, opts.signal ? { signal: opts.signal } : {});
    const index = await this.index(layer, opts);
    this.#checkRange(index, first, last);
    const positions = [];
    for (let i = first; i <= last; i++) positions.push(i);
    const parts = this.#start(layer, index, positions, true, opts) as Promise<Buffer>[];
    for (const p of parts) p.catch(() => undefined);
    return { lengths: positions.map((i) => index.chunk(i).length), parts };
  }

  /**
   * Make sure the chunks at `positions` (ascending) of `layer` are cached,
   * fetching missing ones from the origin; nothing is read back. Resolves
   * to the compressed bytes of each chunk that had to be fetched (0 for cache hits).
   */
  async ensureChunks(layer: LayerRef, index: LayerIndex, positions: readonly number[], opts: ChunkRequestOptions = {}): Promise<number[]> {
    const got = await this.#obtain(layer, index, positions, false, opts);
    return got.map((b) => b?.length ?? 0);
  }

  #checkRange(index: LayerIndex, first: number, last: number): void {
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || first > last || last >= index.chunkCount) {
      throw new ShoalError("SHOAL_ERR_CHUNK_RANGE", `chunks ${first}..${last} outside the layer's ${index.chunkCount} chunks`);
    }
    if (last - first + 1 > this.#maxChunks) throw new BadRequestError(`at most ${this.#maxChunks} chunks per request`);
  }

  async #obtain(layer: LayerRef, index: LayerIndex, positions: readonly number[], read: boolean, opts: ChunkRequestOptions): Promise<(Buffer | undefined)[]> {
    return untilAborted(Promise.all(this.#start(layer, index, positions, read, opts)), opts.signal);
  }

  /** One promise per position: the cached chunk, the flight it joined, or a new origin fetch (adjacent misses in one range). */
  #start(layer: LayerRef, index: LayerIndex, positions: readonly number[], read: boolean, opts: ChunkRequestOptions): Promise<Buffer | undefined>[] {
    if (this.#lifetime.signal.aborted) throw new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down");
    const results: Promise<Buffer | undefined>[] = [];
    const runs: { chunks: Chunk[]; waits: Deferred[] }[] = [];
    let run: { chunks: Chunk[]; waits: Deferred[] } | undefined;
    let runBytes = 0;
    for (const i of positions) {
      const chunk = index.chunk(i);
      const digest = chunkDigest(chunk);
      const shared = this.#inflight.get(digest);
      if (shared) {
        if (opts.background !== true) this.#parked.get(digest)?.(); // someone waits for it now
        results.push(shared.then((b) => (read ? b : undefined)));
        run = undefined;
      } else if (this.#cache.has(digest)) {
        this.#observer.cacheHit?.(chunk.length);
        results.push(read ? this.#readCached(layer, index, i, opts) : Promise.resolve(undefined));
        run = undefined;
      } else {
        const d = deferred();
        this.#inflight.set(digest, d.promise);
        const prev = run?.chunks[run.chunks.length - 1];
        if (!run || !prev || prev.offset + prev.length !== chunk.offset || runBytes + chunk.length > this.#maxRange) {
          run = { chunks: [], waits: [] };
          runs.push(run);
          runBytes = 0;
        }
        run.chunks.push(chunk);
        run.waits.push(d);
        runBytes += chunk.length;
        this.#observer.cacheMiss?.(chunk.length);
        results.push(d.promise);
      }
    }
    for (const r of runs) this.#track(this.#startRun(layer, r.chunks, r.waits, opts));
    return results;
  }

  async #readCached(layer: LayerRef, index: LayerIndex, i: number, opts: ChunkRequestOptions): Promise<Buffer> {
    const chunk = index.chunk(i);
    const bytes = await this.#cache.readCompressed(chunkDigest(chunk), opts.signal ? { signal: opts.signal } : {});
    if (bytes) return bytes;
    // Evicted between has() and the read: fetch it again.
    const [again] = await this.#obtain(layer, index, [i], true, opts);
    return again!;
  }

  /** Fetch a run from the origin: a background one once waiting callers' fetches are done (or one of them wants it). */
  async #startRun(layer: LayerRef, chunks: Chunk[], waits: Deferred[], opts: ChunkRequestOptions): Promise<void> {
    if (opts.background === true) {
      let release!: () => void;
      const wanted = new Promise<void>((resolve) => (release = resolve));
      for (const c of chunks) this.#parked.set(chunkDigest(c), release);
      await Promise.race([yieldTo(this.#demand, { quietMs: QUIET_MS, maxWaitMs: MAX_YIELD_MS, signal: this.#lifetime.signal }), wanted]).catch(() => undefined);
      for (const c of chunks) this.#parked.delete(chunkDigest(c));
    }
    const end = opts.background === true ? undefined : this.#demand.begin();
    try {
      await this.#fetchRun(layer, chunks, waits, opts.credentials);
    } finally {
      end?.();
    }
  }

  /**
   * One range from the origin for adjacent `chunks`; each chunk is
   * verified, handed to its callers and stored as soon as its bytes are in
   * (the range streams), so a caller waits for its own chunk, not the range.
   */
  async #fetchRun(layer: LayerRef, chunks: Chunk[], waits: Deferred[], credentials: Credentials | undefined): Promise<void> {
    const first = chunks[0]!;
    const last = chunks[chunks.length - 1]!;
    const length = last.offset + last.length - first.offset;
    const taken = new Set<number>();
    const accepting: Promise<void>[] = [];
    const take = (k: number, bytes: Uint8Array) => {
      if (taken.has(k)) return;
      taken.add(k);
      accepting.push(this.#accept(layer, chunks[k]!, waits[k]!, bytes));
    };
    const splitter = new RangeSplitter(chunks.map((c) => c.offset + c.length - first.offset), take);
    let bytes: Uint8Array;
    try {
      const client = this.#origins.client(layer.registry, credentials);
      bytes = await client.getBlobRange(layer.repository, layer.digest, first.offset, length, { signal: this.#lifetime.signal, onBytes: (piece, at) => splitter.push(piece, at) });
      this.#observer.originBytes?.(bytes.length);
    } catch (err) {
      chunks.forEach((c, k) => {
        if (!taken.has(k)) this.#settle(c, waits[k]!, err);
      });
      await Promise.all(accepting);
      return;
    }
    chunks.forEach((c, k) => take(k, bytes.subarray(c.offset - first.offset, c.offset - first.offset + c.length)));
    await Promise.all(accepting);
  }

  /** Verify a chunk from the origin, hand it to its callers, then store it (never rejects). */
  async #accept(layer: LayerRef, chunk: Chunk, wait: Deferred, bytes: Uint8Array): Promise<void> {
    const digest = chunkDigest(chunk);
    if (!chunkMatches(chunk, bytes)) {
      this.#settle(chunk, wait, new DigestMismatchError(`chunk ${chunk.index} of ${layer.digest}`, digest, "different bytes from the origin"));
      return;
    }
    const copy = Buffer.from(bytes);
    // Served as soon as verified: the callers do not wait for the store's
    // disk syncs. The flight stays until the chunk is stored, so that a
    // caller asking meanwhile gets these bytes, not the origin's.
    wait.resolve(copy);
    // The cache keeps the compressed bytes only (the supernode never reads them inflated).
    try {
      // not aborted by close, which waits for it: a chunk served is a chunk kept
      await this.#cache.putCompressed(digest, copy, chunk.uncompressedLength, { verified: true });
    } catch (err) {
      // The bytes are verified and served: a later caller fetches them again.
      this.#log.warn({ layer: layer.digest, chunk: chunk.index, err }, "could not cache chunk");
    }
    this.#settle(chunk, wait, undefined, copy);
  }

  #settle(chunk: Chunk, wait: Deferred, err: unknown, bytes?: Buffer): void {
    const digest = chunkDigest(chunk);
    if (this.#inflight.get(digest) === wait.promise) this.#inflight.delete(digest);
    if (bytes) wait.resolve(bytes);
    else wait.reject(err);
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.#log.error({ err }, "chunk fetch failed unexpectedly"));
    this.#work.add(q);
    void q.finally(() => this.#work.delete(q));
  }

  /** Abort origin fetches in flight and wait for them to settle. */
  async close(): Promise<void> {
    this.#lifetime.abort(new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down"));
    await Promise.all([...this.#work]);
  }
}
