// @shoal/fetch/testsuite: the conformance suites of the read path's seams, and the fakes they hold to the same contracts.
export { describeSuite, failedChecks, type Check } from "./suite.ts";
export { chunkSourceSuite, type ChunkSourceSubject } from "./chunk-source.suite.ts";
export { chunkCacheSuite } from "./chunk-cache.suite.ts";
export { MemoryChunkCache, MemorySource, type MemorySourceInit } from "./fakes.ts";
