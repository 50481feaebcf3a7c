// Public surface of @shoal/fetch: the read path the agent, the snapshotter and the registry mirror share.
export type { RemoteLayer } from "./remote-layer.ts";
export { checkRun, runBytes, splitRun, runEnds, type ChunkSource, type FetchChunksOptions, type SourceName } from "./chunk-source.ts";
export type { ChunkCache, InflateOptions, Inflater } from "./chunk-cache.ts";
export { DemandActivity } from "@shoal/base";
export { Flights, allAborted } from "./flights.ts";
export { hedgedRace, HedgeLostError, runHedgedRace, type HedgedRaceCore, type HedgedRaceInit } from "./race.ts";
export { DEFAULT_HEDGE_MS, FAILURE_MEMORY_MS, Fetcher, hedgeDelayMs, latencyAverage, FetchError, MAX_RUN_BYTES, MISS_WINDOW_BYTES, type FetchObserver, type FetchOptions, type FetchStats, type SourceTotals } from "./fetcher.ts";
export { PrefetchJob, MAX_YIELD_MS, QUIET_MS, PREFETCH_CONCURRENCY, STARTUP_CONCURRENCY, type PrefetchProgress, type RateLimit } from "./prefetcher.ts";
export { prefetchOrder, startupRuns, takeRun, BACKGROUND_RUN_BYTES, type ChunkPos, type Run, type LengthOf } from "./prefetch-plan.ts";
export { RegistrySource } from "./sources/registry-source.ts";
export { SupernodeSource } from "./sources/supernode-source.ts";
export { PeerSource, planPeerRun, PEER_LIST_TTL_MS, UNREACHABLE_SET_ASIDE_MS, type ChunkPeerLike, type PeerDirectory } from "./sources/peer-source.ts";
export { openImage, lazyLayersOf, layerSlotsOf, fetchIndexBytes, decodeLayerIndex, RegistryIndexSource, type IndexSource, type OpenedImage, type SeekableLoader } from "./image.ts";
export { LocalSeekableIndexSource, fetchSeekableIndex, decodeSeekableLayerIndex, auditSeekableLayer, loadWindow, windowLoaderOf, type FetchedSeekableIndex, type SeekableIndexSource, type WindowLoader } from "./seekable.ts";
export { Announcer, holdings, type AnnouncerComponents } from "./announcer.ts";
