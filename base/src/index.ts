// Public surface of @shoal/base: what every shoal package shares. Pure: no I/O, no network, no process state.
export * from "./errors.ts";
export { isDigest, assertDigest, digestOf, verifyDigest, Digester, SHA256_DIGEST_RE, isSha256Digest, digestOfHash } from "./digest.ts";
export { untilAborted, sleep, nodeAfter, type After } from "./abort.ts";
export { TokenBucket, type TokenBucketInit, type TokenBucketComponents } from "./token-bucket.ts";
export { parseBytes, parseDuration, humanBytes } from "./units.ts";
export { LruMap } from "./lru-map.ts";
export { DemandActivity, yieldTo } from "./demand.ts";
export { RangeSplitter } from "./range-splitter.ts";
export { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from "./file-mode.ts";
