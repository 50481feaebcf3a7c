/** Inflating a verified chunk, whichever kind: a gzip member of a converted layer, or a span of an ordinary gzip layer. */
import { gunzipMemberAsync } from "./gzip-member.ts";
import type { Chunk } from "./layer-index.ts";
import { inflateSpanAsync } from "./seekable/span-reader.ts";

/**
 * The `chunk.uncompressedLength` bytes `bytes` (the chunk's compressed
 * bytes) hold, inflated on the libuv thread pool. Throws `LayerFormatError`
 * (`SHOAL_ERR_GZIP_CORRUPT`) when they do not inflate to exactly that.
 */
export function inflateChunk(chunk: Chunk, bytes: Uint8Array, where: { layer?: string | undefined } = {}): Promise<Buffer> {
  const at = { layer: where.layer, blobOffset: chunk.offset };
  if (!chunk.resume) return gunzipMemberAsync(bytes, chunk.uncompressedLength, at);
  return inflateSpanAsync(chunk.resume, bytes, chunk.uncompressedLength, at);
}
