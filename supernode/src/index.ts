// Public surface of @shoal/supernode: the chunk cache in front of registries, tracker and preheat.
export { createSupernode, type Supernode, type SupernodeInit } from "./supernode.ts";
export { BlobService, parseRangeHeader, RangeNotSatisfiableError, type BlobReadOptions, type BlockCache, type BlockDb } from "./blob-service.ts";
export { ChunkService, type CompressedChunkStore, type ChunkServiceInit, type ChunkServiceObserver, type ChunkRequestOptions } from "./chunk-service.ts";
export { AnswerGate, backgroundMayStart, BACKGROUND_SLOTS, MAX_BACKGROUND_WAIT_MS, type AnswerGateObserver, type AnswerLoad } from "./answer-gate.ts";
export { HotChunks, type HotChunksObserver, type HotChunksStats } from "./hot-chunks.ts";
export { IndexCache, type IndexDb, type CachedIndex, type IndexHint } from "./index-cache.ts";

export { AccessCheck, type AccessCheckInit } from "./access.ts";
export { PeerTable, type PeerTableInit } from "./peer-table.ts";
export { PreheatJobs, type PreheatJobsInit } from "./preheat.ts";
export { SupernodeMetrics } from "./metrics.ts";
export * from "./constants.ts";
