/**
 * Inflating an ordinary gzip stream from a checkpoint: the compressed bytes
 * from the checkpoint's bit offset, shifted so that the block starts on a
 * byte boundary (Node's zlib has no `inflatePrime`), then a raw inflate with
 * the checkpoint's window as its preset dictionary. Deflate reads bits
 * least-significant first, so shifting every byte right by the bit offset
 * gives a byte-aligned stream that decodes to the same output, with one
 * exception: a stored block inside the span pads to a byte boundary of the
 * original stream, which the shift moves. A span that starts mid-byte and
 * holds a stored block therefore does not inflate this way (zlib rejects it
 * almost always; its output must not be trusted): the index ends
 * such spans at the stored block (`SeekableIndexBuilder`).
 */
import { promisify } from "node:util";
import { constants, inflateRaw, type ZlibOptions } from "node:zlib";
import { LayerFormatError, type LayerPosition } from "../errors.ts";
import type { Checkpoint } from "../layer-index.ts";
import { wholeOutputChunkSize } from "../inflate-buffer.ts";

const inflateRawAsync = promisify(inflateRaw);

/** Bytes `[bit / 8, ...)` of `compressed` re-aligned so that bit `bit % 8` of the first byte becomes bit 0. */
export function alignToBit(compressed: Uint8Array, bitInFirstByte: number): Uint8Array {
  if (bitInFirstByte === 0) return compressed;
  const shift = bitInFirstByte;
  const out = new Uint8Array(compressed.length);
  const n = compressed.length;
  for (let i = 0; i < n - 1; i++) out[i] = ((compressed[i]! >>> shift) | (compressed[i + 1]! << (8 - shift))) & 0xff;
  out[n - 1] = compressed[n - 1]! >>> shift;
  return out;
}

/**
 * The `length` uncompressed bytes of a span from its checkpoint, on the
 * libuv thread pool: `bytes` are the span's compressed bytes (verified by
 * the caller). A stored span's bytes are its data. Throws
 * `SHOAL_ERR_BAD_INDEX` when they do not give `length` bytes: the bytes
 * matched the index, so the index is what is wrong.
 */
export async function inflateSpanAsync(checkpoint: Checkpoint, bytes: Uint8Array, length: number, where: LayerPosition = {}): Promise<Buffer> {
  const fail = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", `span does not inflate from its checkpoint: ${msg}`, where);
  if (checkpoint.skip + checkpoint.tail > bytes.length) throw fail(`a span of ${bytes.length} bytes has no data`);
  const window = checkpoint.window;
  if (window === undefined) throw fail("its window is not loaded");
  bytes = bytes.subarray(checkpoint.skip, bytes.length - checkpoint.tail);
  if (checkpoint.stored) {
    if (bytes.length !== length) throw fail(`a stored span of ${bytes.length} bytes cannot hold ${length}`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  // the last block may run a little past the span's end
  const most = length + 64 * 1024;
  const chunkSize = wholeOutputChunkSize(most);
  const opts: ZlibOptions = {
    ...(window.length > 0 ? { dictionary: window } : {}),
    finishFlush: constants.Z_SYNC_FLUSH,
    maxOutputLength: Math.max(1, most),
    ...(chunkSize ? { chunkSize } : {}),
  };
  let out: Buffer;
  try {
    out = await inflateRawAsync(alignToBit(bytes, checkpoint.bit), opts);
  } catch (err) {
    throw fail((err as Error).message);
  }
  if (out.length < length) throw fail(`it gives ${out.length} bytes, the index says ${length}`);
  return out.subarray(0, length);
}
