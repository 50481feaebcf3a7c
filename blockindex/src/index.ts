// Public surface of @shoal/blockindex: the lazy layer format. Pure: no network, no process state.
export * from "./errors.ts";
export * from "./tar-entry.ts";
export { TarParser, MAX_META_BYTES } from "./tar-reader.ts";
export { normalizeTarPath, parentPath, baseName, joinPath } from "./tar-path.ts";
export { LayerIndex, INDEX_VERSION, chunkDigest, type Chunk, type LayerIndexInit } from "./layer-index.ts";
export { FOOTER_SIZE, decodeFooter, decodeIndexMembers, encodeIndexTrailer, type IndexLocation } from "./blob-layout.ts";
export { convertLayer, type ConvertInit, type ConvertedLayer } from "./convert.ts";
export { DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE } from "./constants.ts";
export { LayerReader, chunkMatches, type LayerChunks } from "./layer-reader.ts";
export { MergedTree, normalizeUserPath, type MergedNode, type MergedInode } from "./merged-tree.ts";
export * from "./media-types.ts";
export * from "./annotations.ts";
export { gunzipMember, gunzipMemberAsync } from "./gzip-member.ts";
export { parseStartupOrder, type StartupOrder } from "./startup-order.ts";
export { inflateChunk } from "./inflate-chunk.ts";
export { type Checkpoint, type SpanGeometry, type WindowRef } from "./layer-index.ts";
export { SeekableIndexBuilder, DEFAULT_SPAN_SPACING, MIN_SPAN_SPACING, MAX_SPAN_SPACING, type BuiltSeekableIndex } from "./seekable/index-builder.ts";
export { encodeSeekableIndex, decodeSeekableIndex, attachWindows, unpackWindow, SEEKABLE_INDEX_VERSION, type EncodedSeekableIndex, type SeekableBlob, type SeekableIndex } from "./seekable/seekable-index.ts";
