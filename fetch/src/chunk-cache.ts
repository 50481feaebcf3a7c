/**
 * The seam between the fetcher and local storage: the agent's `ChunkStore`
 * implements it, and so does the memory fake the fetcher's tests use; one
 * conformance suite (`@shoal/fetch/testsuite`, `chunkCacheSuite`) holds both
 * to this contract.
 */

/**
 * Verified chunks by digest (`sha256:<hex>` of the compressed bytes).
 *
 * - `has(d)`: the chunk is stored (compressed at least); `hasRaw(d)`: it is
 *   stored inflated too, so reads inflate nothing. Both answer from memory.
 * - `put(d, compressed, raw)`: store both forms; `putCompressed(d,
 *   compressed, rawSize)`: the compressed form only. Unless `verified`,
 *   `compressed` is hashed first and a mismatch rejects with
 *   `DigestMismatchError`, storing nothing. Afterwards `has(d)` is true, and
 *   after `put` of an absent chunk `hasRaw(d)` too. Storing a present chunk
 *   is a no-op (a compressed-only one stays so until its first read).
 * - `readRaw(d, offset, length)`: the inflated bytes `[offset, min(offset +
 *   length, rawSize))`: fewer only at the end of the chunk, empty at or past
 *   it; undefined when the chunk is absent. A compressed-only chunk is
 *   inflated (and its inflated form stored) first.
 * - `inflateStored(d)`: store the inflated form of a compressed-only chunk
 *   now; true when it is stored inflated afterwards, false when absent.
 * - Both inflate a compressed-only chunk as a gzip member unless the caller
 *   passes `inflate` (a span of an ordinary gzip layer inflates from its
 *   checkpoint, which only the index knows).
 */
/** How a compressed-only chunk becomes its raw bytes: `compressed` holds its stored bytes, `rawSize` its recorded size. */
export type Inflater = (compressed: Uint8Array, rawSize: number) => Promise<Buffer>;

/** The inflater a read passes down, when the chunk is not a gzip member. */
export interface InflateOptions {
  inflate?: Inflater;
}

export interface ChunkCache {
  has(digest: string): boolean;
  hasRaw(digest: string): boolean;
  put(digest: string, compressed: Uint8Array, raw: Uint8Array, opts?: { verified?: boolean }): Promise<void>;
  putCompressed(digest: string, compressed: Uint8Array, rawSize: number, opts?: { verified?: boolean }): Promise<void>;
  readRaw(digest: string, offset: number, length: number, opts?: InflateOptions): Promise<Buffer | undefined>;
  inflateStored(digest: string, opts?: InflateOptions): Promise<boolean>;
}
