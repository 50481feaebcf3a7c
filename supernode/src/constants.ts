/** Defaults of the supernode's settings. */

/** Chunk store capacity, bytes (compressed + raw copies). */
export const DEFAULT_CACHE_SIZE = 20 * 1024 * 1024 * 1024;
/** A peer reported for bad chunks by this many distinct peers is no longer listed. */
export const DEFAULT_REPORTS_TO_BAN = 2;
/** How long a banned peer stays unlisted, ms. */
export const DEFAULT_BAN_MS = 60 * 60 * 1000;
/** Tracker entries expire this long after their last announce, ms. */
export const DEFAULT_TRACKER_TTL_MS = 60_000;
/** Blocks that byte ranges of any blob are fetched and cached in, bytes. */
export const DEFAULT_BLOB_BLOCK_BYTES = 4 * 1024 * 1024;
/** Largest single range request to the origin, bytes; longer runs are split. */
export const DEFAULT_MAX_RANGE_BYTES = 32 * 1024 * 1024;
/** Retry budget of one origin request, ms. */
export const DEFAULT_ORIGIN_RETRY_MS = 10_000;
/** Range requests a preheat job keeps in flight. */
export const DEFAULT_PREHEAT_CONCURRENCY = 4;
/** Largest index region read from a blob, bytes. */
export const MAX_INDEX_SIZE = 64 * 1024 * 1024;
/** Finished preheat jobs are forgotten after this long, ms. */
export const PREHEAT_JOB_RETENTION_MS = 60 * 60 * 1000;
/** Memory for the chunks read or fetched last (`HotChunks`), bytes. */
export const DEFAULT_HOT_CHUNK_BYTES = 256 * 1024 * 1024;
/** A caller's access to a layer, once checked with the registry, is trusted this long, ms. */
export const DEFAULT_ACCESS_TTL_MS = 5 * 60 * 1000;
/** Decoded indexes kept in memory: at most this many layers … */
export const MAX_INDEXES_IN_MEMORY = 4096;
/** … and at most this many bytes of their encoded index regions. */
export const MAX_INDEX_BYTES_IN_MEMORY = 256 * 1024 * 1024;
/** Blob sizes (HEAD answers) remembered. */
export const MAX_BLOB_SIZES_REMEMBERED = 10_000;
/** How often block records whose block left the cache are swept, ms. */
export const BLOCK_RECORD_SWEEP_MS = 60 * 60 * 1000;
