// Public surface of @shoal/supernode: the chunk cache in front of registries, tracker and preheat.
export { createSupernode, type Supernode, type SupernodeInit, type ListenAddress } from "./supernode.ts";
export { preheat, type PreheatOptions, type PreheatProgress } from "./client.ts";
export { ownerOf, rankSupernodes, normalizeSupernodeUrl } from "./rendezvous.ts";
export { BlobService, parseRangeHeader, RangeNotSatisfiableError, type BlobReadOptions, type BlockCache, type BlockDb } from "./blob-service.ts";
export { ChunkService, chunkDigest, type ChunkCache, type ChunkServiceInit, type ChunkServiceObserver, type ChunkRequestOptions } from "./chunk-service.ts";
export { IndexCache, type IndexDb, type CachedIndex, type IndexHint } from "./index-cache.ts";
export { RegistryClients, parseBasicAuth, type OriginClients, type CallerCredentials, type RegistryClientsInit } from "./origins.ts";
export { AccessCheck, type AccessCheckInit } from "./access.ts";
export { Tracker, parseAnnouncement, parsePeerReport, type PeerReport, type Announcement, type LayerHolder, type PeerInfo, type TrackerInit } from "./tracker.ts";
export { chunkHolding, encodeChunkBitmap, decodeChunkBitmap, bitmapHas, MAX_BITMAP_BYTES } from "./chunk-bitmap.ts";
export { PreheatJobs, parsePreheatRequest, type PreheatRequest, type PreheatStatus, type PreheatJobsInit } from "./preheat.ts";
export { parseLayerPath, layerKey, type LayerRef } from "./layer-ref.ts";
export { SupernodeMetrics, serveMetrics } from "./metrics.ts";
export * from "./constants.ts";
