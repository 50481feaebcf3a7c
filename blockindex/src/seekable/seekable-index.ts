/**
 * The encoding of a seekable index: what lets an ordinary gzip layer be
 * read lazily without converting it. It names the blob it was built from
 * (digest and size) and the sha256 of its uncompressed tar stream (what an
 * image config's `rootfs.diff_ids` must list), then the span table (per span: its blob offset and
 * length, uncompressed length, sha256 of its compressed bytes, and its
 * checkpoint: the bit its first block starts at, the bytes to skip before
 * its data and after it, and its window's length and sha256), then the
 * entries as the lazy format encodes them. Decoded, it is a `LayerIndex`
 * whose chunks are the spans.
 *
 * The windows (up to 32 KiB before each checkpoint) are not in the index:
 * they travel in a **window pack** beside it (each raw-deflated, in span
 * order), fetched a window at a time when a span is first inflated and
 * checked against the digest the index holds. So the index stays small
 * however close the checkpoints, and a host loads only the windows of the
 * spans it reads.
 */
import { createHash } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { readEntries, writeEntries } from "../entry-table.ts";
import { LayerFormatError } from "../errors.ts";
import { LayerIndex, type Checkpoint, type WindowRef } from "../layer-index.ts";
import { ByteReader, ByteWriter } from "../varint.ts";

const MAGIC = Buffer.from("SHSK");
/** Seekable index encoding version written by this code; decode accepts exactly this. */
export const SEEKABLE_INDEX_VERSION = 3;
/** A checkpoint's window is at most this long (deflate's reach back). */
export const WINDOW_BYTES = 32 * 1024;
const F_STORED = 1;

/** The blob a seekable index describes. */
export interface SeekableBlob {
  digest: string;
  size: number;
  /** sha256 of its uncompressed tar stream: the layer's diffID. */
  diffId: string;
}

/** A seekable index as it travels: the blob it describes and its chunks as spans. */
export interface SeekableIndex {
  blob: SeekableBlob;
  index: LayerIndex;
}

/** An encoded seekable index and its window pack. */
export interface EncodedSeekableIndex {
  bytes: Buffer;
  pack: Buffer;
}

/**
 * Binary encoding of `index` (which must be seekable, every window known)
 * for `blob`, and its window pack. Deterministic.
 */
export function encodeSeekableIndex(s: SeekableIndex): EncodedSeekableIndex {
  const { index, blob } = s;
  if (!index.seekable) throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", "not a seekable index", {});
  const w = new ByteWriter();
  const packed: Buffer[] = [];
  w.bytes(MAGIC);
  w.uint(SEEKABLE_INDEX_VERSION);
  w.bytes(Buffer.from(blob.digest.slice("sha256:".length), "hex"));
  w.uint(blob.size);
  w.bytes(Buffer.from(blob.diffId.slice("sha256:".length), "hex"));
  w.uint(index.chunkSize);
  w.uint(index.uncompressedSize);
  w.uint(index.chunkCount);
  let prevEnd = 0;
  for (let i = 0; i < index.chunkCount; i++) {
    const c = index.chunk(i);
    const cp = c.resume!;
    if (cp.window === undefined && cp.windowRef) throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `span ${i}: its window is not loaded`, {});
    const window = cp.window ?? new Uint8Array(0);
    w.byte(cp.stored ? F_STORED : 0);
    w.byte(cp.bit);
    // 1: the span starts where the one before ends; 0: in its last byte (the bits of both blocks)
    w.uint(c.offset - prevEnd + 1);
    w.uint(c.length);
    w.uint(c.uncompressedLength);
    w.bytes(c.digest);
    w.uint(cp.skip);
    w.uint(cp.tail);
    w.uint(window.length);
    if (window.length > 0) {
      const p = deflateRawSync(window, { level: 1 });
      packed.push(p);
      w.uint(p.length);
      w.bytes(createHash("sha256").update(window).digest());
    }
    prevEnd = c.offset + c.length;
  }
  writeEntries(w, index.entries);
  return { bytes: w.finish(), pack: Buffer.concat(packed) };
}

/**
 * Only what a seekable index says of its blob (digest, size, diffID), read
 * from its head without decoding the spans; `SHOAL_ERR_BAD_INDEX` when it
 * is not one this code reads.
 */
export function readSeekableBlob(bytes: Uint8Array, where: { layer?: string } = {}): SeekableBlob {
  return openSeekableIndex(bytes, where).blob;
}

/** A reader past the head of a seekable index (magic, version, blob), or `SHOAL_ERR_BAD_INDEX`. */
function openSeekableIndex(bytes: Uint8Array, where: { layer?: string }): { buf: Buffer; r: ByteReader; fail: (msg: string) => LayerFormatError; blob: SeekableBlob } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", `seekable index: ${msg}`, { layer: where.layer });
  const r = new ByteReader(buf, fail);
  if (!r.bytes(4).equals(MAGIC)) throw fail("not a shoal seekable index");
  const version = r.uint();
  if (version !== SEEKABLE_INDEX_VERSION) throw fail(`version ${version} is not supported (expected ${SEEKABLE_INDEX_VERSION})`);
  const digest = `sha256:${r.bytes(32).toString("hex")}`;
  const size = r.uint();
  return { buf, r, fail, blob: { digest, size, diffId: `sha256:${r.bytes(32).toString("hex")}` } };
}

/**
 * Decode a seekable index (its windows only referenced: see
 * `attachWindows`, `SeekableWindows`). Throws `LayerFormatError`
 * (`SHOAL_ERR_BAD_INDEX`) for anything malformed; never reads outside
 * `bytes`. The caller checks that `blob` is the blob it asked about.
 */
export function decodeSeekableIndex(bytes: Uint8Array, where: { layer?: string } = {}): SeekableIndex & { packBytes: number } {
  const { buf, r, fail, blob } = openSeekableIndex(bytes, where);
  const chunkSize = r.uint();
  const uncompressedSize = r.uint();
  const n = r.uint();
  if (chunkSize === 0 || n > r.remaining) throw fail("span table is malformed");
  const offsets = new Array<number>(n);
  const uncompressedOffsets = new Array<number>(n);
  const checkpoints = new Array<Checkpoint>(n);
  const chunkLengths = new Array<number>(n);
  const chunkDigests = new Array<Buffer>(n);
  let prevEnd = 0;
  let u = 0;
  let pack = 0;
  for (let i = 0; i < n; i++) {
    const flags = r.byte();
    const bit = r.byte();
    const gap = r.uint();
    if (gap > 1 || (gap === 0 && i === 0)) throw fail(`span ${i} does not start where the span before it ends`);
    offsets[i] = prevEnd + gap - 1;
    chunkLengths[i] = r.uint();
    uncompressedOffsets[i] = u;
    u += r.uint();
    chunkDigests[i] = Buffer.from(r.bytes(32));
    const skip = r.uint();
    const tail = r.uint();
    const length = r.uint();
    if (length > WINDOW_BYTES) throw fail(`span ${i} has a window of ${length} bytes`);
    let windowRef: WindowRef | undefined;
    if (length > 0) {
      const packed = r.uint();
      windowRef = { offset: pack, packed, length, digest: Buffer.from(r.bytes(32)) };
      pack += packed;
    }
    checkpoints[i] = { bit, skip, tail, ...(windowRef ? { windowRef } : { window: new Uint8Array(0) }), ...(flags & F_STORED ? { stored: true } : {}) };
    prevEnd = offsets[i]! + chunkLengths[i]!;
    if (skip + tail >= chunkLengths[i]!) throw fail(`span ${i} holds no data`);
    if (prevEnd > blob.size) throw fail(`span ${i} runs past the blob's ${blob.size} bytes`);
  }
  if (prevEnd !== blob.size) throw fail(`spans cover ${prevEnd} bytes of the blob's ${blob.size}`);
  if (u !== uncompressedSize) throw fail(`spans cover ${u} uncompressed bytes, the index says ${uncompressedSize}`);
  const { entries, hashes } = readEntries(r, buf, uncompressedSize, fail);
  if (r.remaining !== 0) throw fail("trailing bytes after the index");
  const index = new LayerIndex({ chunkSize, uncompressedSize, chunkLengths, chunkDigests, entries, pathHashes: hashes, spans: { offsets, uncompressedOffsets, checkpoints } });
  return { blob, index, packBytes: pack };
}

/**
 * The window `ref` names, from `packed` (its bytes of the pack), checked
 * against its digest. Throws `SHOAL_ERR_BAD_INDEX` when they are not it.
 */
export function unpackWindow(ref: WindowRef, packed: Uint8Array): Buffer {
  let w: Buffer;
  try {
    w = inflateRawSync(packed, { maxOutputLength: WINDOW_BYTES });
  } catch {
    throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", "a checkpoint window does not inflate", {});
  }
  if (w.length !== ref.length || !createHash("sha256").update(w).digest().equals(ref.digest)) {
    throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", "a checkpoint window does not match its digest in the index", {});
  }
  return w;
}

/** Fill every window of `index` from its whole window pack `pack` (checked against the index). */
export function attachWindows(index: LayerIndex, pack: Uint8Array): void {
  for (let i = 0; i < index.chunkCount; i++) {
    const cp = index.chunk(i).resume!;
    if (cp.window !== undefined || !cp.windowRef) continue;
    const ref = cp.windowRef;
    if (ref.offset + ref.packed > pack.length) throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `the window pack is shorter than the index says`, {});
    cp.window = unpackWindow(ref, pack.subarray(ref.offset, ref.offset + ref.packed));
  }
}
