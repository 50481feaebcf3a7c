// Public surface of the agent's chunk store: verified chunks on local disk
// (compressed for peers, uncompressed for FUSE reads), records in LevelDB.
export {
  ChunkStore,
  type ChunkStoreComponents,
  type ChunkStoreInit,
  type ChunkStoreMetrics,
  type ChunkStoreStats,
  type PutOptions,
  type Counter,
} from "./chunk-store.ts";
export { DiskFullError, StoreClosedError } from "./errors.ts";
export type { ChunkDb, ChunkDbOperation, ChunkRecord } from "./records.ts";
export { DEFAULT_CAPACITY_BYTES, DEFAULT_MAX_OPEN_FILES, DEFAULT_ACCESS_FLUSH_MS } from "./constants.ts";
export { chunkPaths, type ChunkPaths } from "./layout.ts";
export { openMetadataDb } from "./metadata-db.ts";
