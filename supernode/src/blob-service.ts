/**
 * Byte ranges of any blob (layers that were never converted, configs): the
 * blob is cut into fixed blocks; each block is fetched from the origin once
 * however many callers ask at the same moment, and cached in the chunk store
 * under the sha256 of its bytes, with a `blk!` record mapping blob and block
 * number to that digest. A blob that fits in one block is verified against
 * its digest; blocks of larger blobs are cached as the origin served them
 * (the caller verifies the whole blob).
 */
import { type Credentials, type RegistryClients } from "@shoal/oci";
import { type BlockList, type LayerRef } from "@shoal/swarm";
import { DigestMismatchError, LruMap, untilAborted, ShoalError } from "@shoal/base";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { AccessCheck } from "./access.ts";
import { DEFAULT_BLOB_BLOCK_BYTES, MAX_BLOB_SIZES_REMEMBERED } from "./constants.ts";

/** The chunk-store surface blocks need (`ChunkStore` satisfies it). */
export interface BlockCache {
  has(digest: string): boolean;
  putCompressed(digest: string, bytes: Uint8Array, rawSize: number, opts?: { signal?: AbortSignal; verified?: boolean }): Promise<void>;
  readCompressed(digest: string, opts?: { signal?: AbortSignal }): Promise<Buffer | undefined>;
}

/** Where block records live (over a utf8 `Level`). */
export interface BlockDb {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /** Every record whose key starts with `prefix`. */
  entries(prefix: string): AsyncIterable<[string, string]>;
}

const BLOCK_PREFIX = "blk!";
/** Verified block lists: `blkl!<blob digest>!<block bytes>` → `BlockList` JSON. */
const LIST_PREFIX = "blkl!";

/** Options of one blob read. */
export interface BlobReadOptions {
  signal?: AbortSignal;
  credentials?: Credentials;
}

/** A byte range that lies outside the blob: HTTP 416. */
export class RangeNotSatisfiableError extends ShoalError {
  readonly size: number;
  constructor(message: string, size: number) {
    super("SHOAL_ERR_RANGE_NOT_SATISFIABLE", message);
    this.size = size;
  }
}

const sha256 = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Serves and caches byte ranges of blobs; see the module comment. */
export class BlobService {
  readonly #cache: BlockCache;
  readonly #db: BlockDb;
  readonly #origins: RegistryClients;
  readonly #access: AccessCheck | undefined;
  readonly #log: Logger;
  readonly #blockBytes: number;
  readonly #sizes = new LruMap<string, Promise<number>>({ maxEntries: MAX_BLOB_SIZES_REMEMBERED });
  readonly #inflight = new Map<string, Promise<Buffer>>();
  readonly #lists = new Map<string, Promise<BlockList>>();
  readonly #lifetime = new AbortController();
  readonly #originBytes: ((n: number) => void) | undefined;

  constructor(
    components: { cache: BlockCache; db: BlockDb; origins: RegistryClients; logger: Logger; access?: AccessCheck; originBytes?: (n: number) => void },
    init: { blockBytes?: number } = {},
  ) {
    this.#cache = components.cache;
    this.#db = components.db;
    this.#origins = components.origins;
    this.#access = components.access;
    this.#originBytes = components.originBytes;
    this.#log = components.logger.child({ component: "blobs" });
    this.#blockBytes = init.blockBytes ?? DEFAULT_BLOB_BLOCK_BYTES;
  }

  /** Size of the blob (a HEAD at the origin, remembered). Checks the caller's access first. */
  async size(blob: LayerRef, opts: BlobReadOptions = {}): Promise<number> {
    await this.#access?.check(blob, opts.credentials, opts.signal ? { signal: opts.signal } : {});
    const key = `${blob.registry}/${blob.repository}@${blob.digest}`;
    let p = this.#sizes.get(key);
    if (!p) {
      p = (async () => {
        const head = await this.#origins.client(blob.registry, opts.credentials).headBlob(blob.repository, blob.digest, { signal: this.#lifetime.signal });
        if (!head) throw new ShoalError("SHOAL_ERR_REGISTRY_NOT_FOUND", `blob ${blob.digest} not found in ${blob.registry}/${blob.repository}`);
        return head.size;
      })();
      this.#sizes.set(key, p);
      p.catch(() => this.#sizes.delete(key));
    }
    return untilAborted(p, opts.signal);
  }

  /**
   * Bytes `[start, end)` of the blob, in block-sized pieces, in order
   * (`onPiece` is called for each as soon as it is ready, so a caller can
   * stream). Throws `RangeNotSatisfiableError` unless `0 <= start < end <= size`.
   */
  async read(blob: LayerRef, start: number, end: number, onPiece: (piece: Buffer) => Promise<void> | void, opts: BlobReadOptions = {}): Promise<void> {
    const size = await this.size(blob, opts);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || start >= end || end > size) {
      throw new RangeNotSatisfiableError(`range ${start}-${end - 1} outside the blob's ${size} bytes`, size);
    }
    const first = Math.floor(start / this.#blockBytes);
    const last = Math.floor((end - 1) / this.#blockBytes);
    // fetch up to two blocks ahead of the one being sent
    const pending: Promise<Buffer>[] = [];
    const want = (n: number) => {
      if (n <= last) pending.push(this.#block(blob, n, size, opts));
    };
    want(first);
    want(first + 1);
    for (let n = first; n <= last; n++) {
      want(n + 2);
      const block = await untilAborted(pending.shift()!, opts.signal);
      const from = n === first ? start - n * this.#blockBytes : 0;
      const to = n === last ? end - n * this.#blockBytes : block.length;
      await onPiece(block.subarray(from, to));
    }
  }

  /**
   * The digests of the blob's blocks, published only once the whole blob,
   * read in order (from the cache, else the origin), matched its digest:
   * what lets an agent check each block a peer sends it on its own. The
   * first call for a blob reads it whole; the list is kept.
   */
  async blockList(blob: LayerRef, opts: BlobReadOptions = {}): Promise<BlockList> {
    const size = await this.size(blob, opts);
    const key = `${LIST_PREFIX}${blob.digest}!${this.#blockBytes}`;
    const known = await this.#db.get(key).catch(() => undefined);
    if (known) return JSON.parse(known) as BlockList;
    let p = this.#lists.get(key);
    if (!p) {
      p = this.#verifyBlocks(blob, size, key, opts).finally(() => this.#lists.delete(key));
      p.catch(() => undefined);
      this.#lists.set(key, p);
    }
    return untilAborted(p, opts.signal);
  }

  async #verifyBlocks(blob: LayerRef, size: number, key: string, opts: BlobReadOptions): Promise<BlockList> {
    const count = Math.ceil(size / this.#blockBytes);
    const hash = createHash("sha256");
    const blocks: string[] = [];
    const pending: Promise<Buffer>[] = [];
    const want = (n: number) => {
      if (n < count) pending.push(this.#block(blob, n, size, { ...(opts.credentials ? { credentials: opts.credentials } : {}) }));
    };
    want(0);
    want(1);
    for (let n = 0; n < count; n++) {
      want(n + 2);
      const block = await pending.shift()!;
      hash.update(block);
      blocks.push(sha256(block));
    }
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== blob.digest) throw new DigestMismatchError(`blob ${blob.digest}`, blob.digest, got);
    const list: BlockList = { size, blockBytes: this.#blockBytes, blocks };
    await this.#db.put(key, JSON.stringify(list)).catch((err: unknown) => this.#log.warn({ blob: blob.digest, err }, "could not keep a block list"));
    return list;
  }

  /** Block `n` of the blob: from the cache, else from the origin once for every caller. */
  #block(blob: LayerRef, n: number, size: number, opts: BlobReadOptions): Promise<Buffer> {
    const key = `${BLOCK_PREFIX}${blob.digest}!${this.#blockBytes}!${n}`;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#load(blob, n, size, key, opts).finally(() => this.#inflight.delete(key));
      p.catch(() => undefined);
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #load(blob: LayerRef, n: number, size: number, key: string, opts: BlobReadOptions): Promise<Buffer> {
    const offset = n * this.#blockBytes;
    const length = Math.min(this.#blockBytes, size - offset);
    const known = await this.#db.get(key).catch(() => undefined);
    if (known && this.#cache.has(known)) {
      const bytes = await this.#cache.readCompressed(known);
      if (bytes?.length === length) return bytes;
    }
    // Origin fetches are shared by every caller: not aborted by any one of them.
    const bytes = Buffer.from(await this.#origins.client(blob.registry, opts.credentials).getBlobRange(blob.repository, blob.digest, offset, length, { signal: this.#lifetime.signal }));
    this.#originBytes?.(bytes.length);
    if (bytes.length !== length) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `origin sent ${bytes.length} bytes for a ${length}-byte block of ${blob.digest}`);
    const digest = sha256(bytes);
    if (length === size && digest !== blob.digest) throw new DigestMismatchError(`blob ${blob.digest}`, blob.digest, digest);
    try {
      // keyed by the digest just computed from these bytes: nothing to check again
      await this.#cache.putCompressed(digest, bytes, 0, { signal: this.#lifetime.signal, verified: true });
      await this.#db.put(key, digest);
    } catch (err) {
      this.#log.warn({ blob: blob.digest, block: n, err }, "could not cache blob block");
    }
    return bytes;
  }

  /**
   * Delete the block records whose block is no longer in the cache (evicted),
   * so that records stay as bounded as the cache itself; resolves how many
   * went.
   */
  async sweepRecords(): Promise<number> {
    let n = 0;
    for await (const [key, digest] of this.#db.entries(BLOCK_PREFIX)) {
      if (this.#lifetime.signal.aborted) break;
      if (this.#cache.has(digest) || this.#inflight.has(key)) continue;
      await this.#db.del(key);
      n++;
    }
    for await (const [key, text] of this.#db.entries(LIST_PREFIX)) {
      if (this.#lifetime.signal.aborted) break;
      let blocks: string[] = [];
      try {
        blocks = (JSON.parse(text) as BlockList).blocks;
      } catch {
        // unreadable: goes
      }
      if (blocks.some((d) => this.#cache.has(d))) continue;
      await this.#db.del(key);
      n++;
    }
    if (n > 0) this.#log.info({ records: n }, "swept block records of evicted blocks");
    return n;
  }

  /** Abort origin fetches in flight. */
  close(): void {
    this.#lifetime.abort(new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down"));
  }
}

/**
 * The `[start, end)` a `Range` header asks of a blob of `size` bytes:
 * `bytes=A-B`, `bytes=A-` or `bytes=-N` (one range only). Undefined for no
 * header; throws `RangeNotSatisfiableError` for one that cannot be served.
 */
export function parseRangeHeader(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  const bad = () => new RangeNotSatisfiableError(`cannot serve range ${JSON.stringify(header.slice(0, 100))} of a ${size}-byte blob`, size);
  if (!m || (m[1] === "" && m[2] === "")) throw bad();
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) throw bad();
    return { start: Math.max(0, size - n), end: size };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size : Math.min(size, Number(m[2]) + 1);
  if (!Number.isSafeInteger(start) || start >= size || end <= start) throw bad();
  return { start, end };
}
