/**
 * The routes of the supernode API: one place for their paths, query
 * parameters and headers. Blob routes name a blob by
 * `<registry>/<repository>/<digest>` after their prefix (see `layerPath`).
 *
 * | route | answer |
 * |---|---|
 * | `GET /v1/health` | `Health` |
 * | `GET /v1/chunks/<blob>?first=A&last=B[&index=D]` | compressed chunks A..B of a lazy layer, concatenated; `x-shoal-chunk-lengths` lists their lengths |
 * | `GET /v1/index/<blob>[?index=D]` | the index region of a lazy layer; `x-shoal-index-offset`, `x-shoal-index-digest` |
 * | `GET /v1/index/<blob>?kind=seekable` | the seekable index of an ordinary gzip or tar layer, built on first request from one read of the blob; `x-shoal-index-digest` |
 * | `GET /v1/index/<blob>?kind=seekable-windows` with `Range` | bytes of that index's window pack (206) |
 * | `GET, HEAD /v1/blobs/<blob>` with optional `Range` | bytes of any blob (206 for a range) |
 * | `POST /v1/announce` | body `Announcement`; answers `{ ttlMs }` |
 * | `POST /v1/report` | body `PeerReport`; answers `{ banned }` |
 * | `GET /v1/peers?layer=L[&chunk=N]` | `LayerHolder[]` |
 * | `POST /v1/preheat` | body `PreheatRequest`; answers 202 `{ id }` |
 * | `GET /v1/preheat/<id>` | `PreheatStatus` |
 * | `GET /v1/traces/<registry>/<repo>/<manifest digest>` | the image's `StartupTrace`, 404 when none |
 * | `PUT /v1/traces/<registry>/<repo>/<manifest digest>` | body `StartupTrace`; answers `{ stored }` (false: one is kept already) |
 *
 * Errors answer `{ code, message }` with the status the error set gives the code.
 * `Authorization: Basic` carries the caller's registry credentials on blob routes and preheat.
 */
import { layerPath, type LayerRef } from "./layer-ref.ts";

/** Path prefixes of the blob routes. */
export const CHUNKS_PREFIX = "/v1/chunks/";
export const INDEX_PREFIX = "/v1/index/";
export const BLOBS_PREFIX = "/v1/blobs/";
/** `GET /v1/blocks/<registry>/<repo>/<digest>`: the digests of a blob's cache blocks, once the supernode verified the whole blob. */
export const BLOCKS_PREFIX = "/v1/blocks/";
export const PREHEAT_PREFIX = "/v1/preheat/";
/** `GET, PUT /v1/traces/<registry>/<repo>/<manifest digest>`: an image's startup trace. */
export const TRACES_PREFIX = "/v1/traces/";

/** Fixed routes. */
export const HEALTH_PATH = "/v1/health";
export const ANNOUNCE_PATH = "/v1/announce";
export const REPORT_PATH = "/v1/report";
export const PEERS_PATH = "/v1/peers";
export const PREHEAT_PATH = "/v1/preheat";

/** Response headers. */
export const CHUNK_LENGTHS_HEADER = "x-shoal-chunk-lengths";
export const INDEX_OFFSET_HEADER = "x-shoal-index-offset";
export const INDEX_DIGEST_HEADER = "x-shoal-index-digest";
/** Request header of `GET /v1/chunks/…`: `background` when nobody waits for the answer (a prefetch), so the supernode's origin fetches for it yield to those of callers who wait. */
export const PRIORITY_HEADER = "x-shoal-priority";

/** `GET` path of chunks `first..last` (inclusive) of a lazy layer; `indexDigest` lets the supernode check the index it holds. */
export function chunksRoute(layer: LayerRef, first: number, last: number, indexDigest?: string): string {
  return `${CHUNKS_PREFIX}${layerPath(layer)}?first=${first}&last=${last}${indexDigest ? `&index=${indexDigest}` : ""}`;
}

/** `GET` path of a lazy layer's index region. */
export function indexRoute(layer: LayerRef, indexDigest?: string): string {
  return `${INDEX_PREFIX}${layerPath(layer)}${indexDigest ? `?index=${indexDigest}` : ""}`;
}

/** The `kind` query parameter of an index request that asks for a seekable index. */
export const SEEKABLE_INDEX_KIND = "seekable";

/** The `kind` that asks for ranges of a seekable index's window pack. */
export const SEEKABLE_WINDOWS_KIND = "seekable-windows";

/** `GET` path of the seekable index of an ordinary (gzip or tar) layer. */
export function seekableIndexRoute(layer: LayerRef): string {
  return `${INDEX_PREFIX}${layerPath(layer)}?kind=${SEEKABLE_INDEX_KIND}`;
}

/** `GET` path (with a `Range`) of a seekable index's window pack. */
export function seekableWindowsRoute(layer: LayerRef): string {
  return `${INDEX_PREFIX}${layerPath(layer)}?kind=${SEEKABLE_WINDOWS_KIND}`;
}

/** `GET`/`HEAD` path of any blob. */
export function blobRoute(blob: LayerRef): string {
  return `${BLOBS_PREFIX}${layerPath(blob)}`;
}

/** `GET` path of a blob's block digests. */
export function blocksRoute(blob: LayerRef): string {
  return `${BLOCKS_PREFIX}${layerPath(blob)}`;
}

/** `GET` path of the holders of a layer (of one chunk of it, when given). */
export function peersRoute(layer: string, chunk?: number): string {
  return `${PEERS_PATH}?layer=${encodeURIComponent(layer)}${chunk === undefined ? "" : `&chunk=${chunk}`}`;
}

/** `GET` path of a preheat job. */
export function preheatJobRoute(id: string): string {
  return `${PREHEAT_PREFIX}${encodeURIComponent(id)}`;
}

/** Path of the startup trace of the image `image` (its `digest` the manifest digest). */
export function traceRoute(image: LayerRef): string {
  return `${TRACES_PREFIX}${layerPath(image)}`;
}
