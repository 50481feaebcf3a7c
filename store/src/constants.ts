/** Defaults for `ChunkStoreInit`. */

/** Default size cap of the chunk store: 10 GiB of compressed + raw file bytes. */
export const DEFAULT_CAPACITY_BYTES = 10 * 1024 ** 3;

/** Default bound on open file handles kept for reads (each chunk has two files). */
export const DEFAULT_MAX_OPEN_FILES = 256;

/** Default interval between batched writes of last-access times to LevelDB. */
export const DEFAULT_ACCESS_FLUSH_MS = 10_000;

/** Files opened and stat'ed in parallel while reconciling the store at open. */
export const RECOVERY_CONCURRENCY = 32;

/** Extra bytes freed beyond a chunk's size when a put hits ENOSPC (file system block slack). */
export const DISK_FULL_SLACK_BYTES = 64 * 1024;
