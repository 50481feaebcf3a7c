import { InvalidArgumentError, digestOfHash } from "@shoal/base";
import { LayerFormatError } from "./errors.ts";
import { readEntries, writeEntries } from "./entry-table.ts";
import type { TarEntry } from "./tar-entry.ts";
import { hashPath, PathTable } from "./path-table.ts";
import { ByteReader, ByteWriter } from "./varint.ts";

/** Magic at the start of an encoded index. */
const MAGIC = Buffer.from("SHIX");
/** Index encoding version written by this code; decode accepts exactly this. */
export const INDEX_VERSION = 1;

/** One chunk: an independent gzip member of the blob's data region. */
export interface Chunk {
  /** Position in the chunk table. */
  index: number;
  /** Offset of the member in the blob. */
  offset: number;
  /** Length of the member in the blob, in bytes. */
  length: number;
  /** sha256 of the member's bytes (32 bytes). */
  digest: Buffer;
  /** Offset of the chunk's first byte in the uncompressed tar stream. */
  uncompressedOffset: number;
  /** Uncompressed length: `chunkSize`, less for the last chunk (any length for a span). */
  uncompressedLength: number;
  /** Present for a span of an ordinary gzip stream (not a gzip member): where inflating resumes. */
  resume?: Checkpoint;
}

/**
 * Where inflating an ordinary gzip stream resumes at a deflate block
 * boundary: the bit of the span's first byte the block starts at (0..7),
 * and the up to 32 KiB of uncompressed data before it (the window).
 */
export interface Checkpoint {
  bit: number;
  /** The window, once known: a decoded index holds only `windowRef` until a reader loads it (`SeekableWindows`). */
  window?: Uint8Array;
  /** Where the window lies in the index's window pack, and its sha256; absent: the span needs no window. */
  windowRef?: WindowRef;
  /** The span is the data of a stored block: its bytes are the uncompressed bytes (`bit` 0, no window). */
  stored?: boolean;
  /** Bytes at the span's start before its deflate (or stored) data: a gzip header, a trailer before it, a stored block's header. */
  skip: number;
  /** Bytes at the span's end after its data (the last span: the last trailer and what follows). */
  tail: number;
}

/** A checkpoint's window in the window pack beside a seekable index: `packed` raw-deflated bytes at `offset`, inflating to `length` bytes of sha256 `digest`. */
export interface WindowRef {
  offset: number;
  packed: number;
  length: number;
  digest: Buffer;
}

/**
 * The spans of an ordinary gzip layer (`seekable`): per chunk its blob
 * offset, its first uncompressed byte and its checkpoint. Lengths and
 * digests stay in `chunkLengths`/`chunkDigests`; uncompressed lengths
 * follow from the offsets.
 */
export interface SpanGeometry {
  offsets: number[];
  uncompressedOffsets: number[];
  checkpoints: Checkpoint[];
}

/** The digest string of a chunk, `sha256:<hex>` of its compressed bytes: how stores, peers and the tracker name it. */
export function chunkDigest(chunk: Chunk): string {
  return digestOfHash(chunk.digest);
}

/** Everything needed to build a `LayerIndex`. */
export interface LayerIndexInit {
  chunkSize: number;
  uncompressedSize: number;
  chunkLengths: number[];
  chunkDigests: Buffer[];
  entries: TarEntry[];
  /** Chunk indexes to fetch first after a mount (may be empty). */
  prefetch?: number[];
  /** Spans of an ordinary gzip stream instead of `chunkSize` members back to back (then `chunkSize` is only their nominal size). */
  spans?: SpanGeometry;
  /** The hash of each entry's path, when the decoder computed them already. */
  pathHashes?: Uint32Array;
}

/**
 * The offset/length index of one lazy layer: every tar entry and the chunk
 * table. Chunks cover the uncompressed stream in fixed `chunkSize` steps
 * (the last may be shorter); chunk `i` holds uncompressed bytes
 * `[i*chunkSize, min((i+1)*chunkSize, uncompressedSize))`. A seekable
 * index of an ordinary gzip layer (`spans`) has chunks of any size instead:
 * spans of the gzip stream between checkpoints.
 */
export class LayerIndex {
  readonly chunkSize: number;
  readonly uncompressedSize: number;
  readonly entries: TarEntry[];
  readonly prefetch: number[];
  /** Total bytes of the data members (the blob offset where the index members start). */
  readonly dataSize: number;
  private readonly lengths: number[];
  private readonly offsets: number[];
  private readonly digests: Buffer[];
  private readonly spans: SpanGeometry | undefined;
  private byPath: PathTable | undefined;
  private readonly pathHashes: Uint32Array | undefined;

  constructor(init: LayerIndexInit) {
    const expected = init.spans ? init.spans.offsets.length : init.uncompressedSize === 0 ? 0 : Math.ceil(init.uncompressedSize / init.chunkSize);
    if (init.chunkLengths.length !== expected || init.chunkDigests.length !== expected) {
      throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `index has ${init.chunkLengths.length} chunks, expected ${expected}`);
    }
    this.chunkSize = init.chunkSize;
    this.uncompressedSize = init.uncompressedSize;
    this.entries = init.entries;
    this.prefetch = init.prefetch ?? [];
    this.lengths = init.chunkLengths;
    this.digests = init.chunkDigests;
    this.pathHashes = init.pathHashes;
    this.spans = init.spans;
    if (init.spans) {
      checkSpans(init.spans, init.chunkLengths, init.uncompressedSize);
      this.offsets = init.spans.offsets;
      this.dataSize = expected === 0 ? 0 : this.offsets[expected - 1]! + this.lengths[expected - 1]!;
      return;
    }
    this.offsets = new Array<number>(expected);
    let off = 0;
    for (let i = 0; i < expected; i++) {
      this.offsets[i] = off;
      off += this.lengths[i]!;
    }
    this.dataSize = off;
  }

  /** Number of chunks. */
  get chunkCount(): number {
    return this.lengths.length;
  }

  /** Chunk `i`; throws RangeError when out of range. */
  chunk(i: number): Chunk {
    if (!Number.isInteger(i) || i < 0 || i >= this.lengths.length) throw new InvalidArgumentError(`chunk ${i} out of range 0..${this.lengths.length - 1}`);
    const common = { index: i, offset: this.offsets[i]!, length: this.lengths[i]!, digest: this.digests[i]! };
    if (this.spans) {
      const u = this.spans.uncompressedOffsets;
      const end = i + 1 < u.length ? u[i + 1]! : this.uncompressedSize;
      return { ...common, uncompressedOffset: u[i]!, uncompressedLength: end - u[i]!, resume: this.spans.checkpoints[i]! };
    }
    const uncompressedOffset = i * this.chunkSize;
    return { ...common, uncompressedOffset, uncompressedLength: Math.min(this.chunkSize, this.uncompressedSize - uncompressedOffset) };
  }

  /** True for the seekable index of an ordinary gzip layer (chunks are spans with checkpoints). */
  get seekable(): boolean {
    return this.spans !== undefined;
  }

  /**
   * The entry at normalised `path` in this layer alone (the last one when a
   * tar holds the path twice), or undefined.
   */
  find(path: string): TarEntry | undefined {
    this.byPath ??= new PathTable(this.entries, this.pathHashes ?? Uint32Array.from(this.entries, (e) => hashPath(e.path)));
    const i = this.byPath.get(path);
    return i < 0 ? undefined : this.entries[i];
  }

  /**
   * Chunk indexes `[first, last]` holding uncompressed bytes
   * `[offset, offset + length)`. Returns undefined when `length` is 0.
   * Throws RangeError when the range runs past the stream.
   */
  chunksForRange(offset: number, length: number): { first: number; last: number } | undefined {
    if (length === 0) return undefined;
    if (offset < 0 || length < 0 || offset + length > this.uncompressedSize) throw new InvalidArgumentError(`range ${offset}+${length} outside the layer`);
    if (this.spans) return { first: this.spanAt(offset), last: this.spanAt(offset + length - 1) };
    return { first: Math.floor(offset / this.chunkSize), last: Math.floor((offset + length - 1) / this.chunkSize) };
  }

  /** The span holding uncompressed byte `at` (binary search over the span starts). */
  private spanAt(at: number): number {
    const u = this.spans!.uncompressedOffsets;
    let lo = 0;
    let hi = u.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (u[mid]! <= at) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  /** Binary encoding of this index (see `decode`). Deterministic. A seekable index has its own (`encodeSeekableIndex`). */
  encode(): Buffer {
    if (this.spans) throw new InvalidArgumentError("a seekable index is encoded by encodeSeekableIndex");
    const w = new ByteWriter();
    w.bytes(MAGIC);
    w.uint(INDEX_VERSION);
    w.uint(this.chunkSize);
    w.uint(this.uncompressedSize);
    w.uint(this.lengths.length);
    for (const l of this.lengths) w.uint(l);
    for (const d of this.digests) w.bytes(d);
    writeEntries(w, this.entries);
    w.uint(this.prefetch.length);
    for (const c of this.prefetch) w.uint(c);
    return w.finish();
  }

  /**
   * Decode an index produced by `encode`. Throws `LayerFormatError`
   * (`SHOAL_ERR_BAD_INDEX`) for anything malformed, including a different
   * version; never reads outside `bytes`.
   */
  static decode(bytes: Uint8Array, where: { layer?: string } = {}): LayerIndex {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const r = new ByteReader(buf, (msg) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", msg, { layer: where.layer }));
    const fail = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", msg, { layer: where.layer });
    if (!r.bytes(4).equals(MAGIC)) throw fail("not a shoal index");
    const version = r.uint();
    if (version !== INDEX_VERSION) throw fail(`index version ${version} is not supported (expected ${INDEX_VERSION})`);
    const chunkSize = r.uint();
    const uncompressedSize = r.uint();
    const n = r.uint();
    if (chunkSize === 0 || n > r.remaining) throw fail("index chunk table is malformed");
    const chunkLengths = new Array<number>(n);
    for (let i = 0; i < n; i++) chunkLengths[i] = r.uint();
    const chunkDigests = new Array<Buffer>(n);
    for (let i = 0; i < n; i++) chunkDigests[i] = r.bytes(32);
    const { entries, hashes } = readEntries(r, buf, uncompressedSize, fail);
    const p = r.uint();
    if (p > r.remaining) throw fail("prefetch list is malformed");
    const prefetch = new Array<number>(p);
    for (let i = 0; i < p; i++) {
      prefetch[i] = r.uint();
      if (prefetch[i]! >= n) throw fail("prefetch list names a chunk out of range");
    }
    if (r.remaining !== 0) throw fail("trailing bytes after the index");
    return new LayerIndex({ chunkSize, uncompressedSize, chunkLengths, chunkDigests, entries, prefetch, pathHashes: hashes });
  }
}

/** Throws `SHOAL_ERR_BAD_INDEX` unless the spans start at 0, follow each other in both streams and lie inside the stream. */
function checkSpans(spans: SpanGeometry, lengths: readonly number[], uncompressedSize: number): void {
  const n = lengths.length;
  const bad = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", `seekable index: ${msg}`, {});
  if (spans.uncompressedOffsets.length !== n || spans.checkpoints.length !== n) throw bad("span table lengths differ");
  if (n === 0 ? uncompressedSize !== 0 : spans.uncompressedOffsets[0] !== 0) throw bad("spans do not start at uncompressed offset 0");
  for (let i = 0; i < n; i++) {
    const u = spans.uncompressedOffsets[i]!;
    const next = i + 1 < n ? spans.uncompressedOffsets[i + 1]! : uncompressedSize;
    if (!(next > u)) throw bad(`span ${i} is empty or out of order`);
    const cp = spans.checkpoints[i]!;
    if (!Number.isInteger(cp.bit) || cp.bit < 0 || cp.bit > 7 || (cp.window?.length ?? cp.windowRef?.length ?? 0) > 32 * 1024) throw bad(`span ${i} has a malformed checkpoint`);
    if (cp.skip + cp.tail >= lengths[i]!) throw bad(`span ${i} holds no data`);
    const prevEnd = i > 0 ? spans.offsets[i - 1]! + lengths[i - 1]! : 0;
    if (spans.offsets[i]! !== prevEnd && spans.offsets[i]! !== prevEnd - 1) throw bad(`span ${i} does not start where the span before it ends`);
  }
}
