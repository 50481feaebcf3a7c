import { InvalidArgumentError, digestOfHash } from "@shoal/base";
import { LayerFormatError } from "./errors.ts";
import type { EntryType, TarEntry } from "./tar-entry.ts";
import { hashBytes, hashPath, PathTable } from "./path-table.ts";
import { isNormalizedTarPath } from "./tar-path.ts";
import { ByteReader, ByteWriter } from "./varint.ts";

/** Magic at the start of an encoded index. */
const MAGIC = Buffer.from("SHIX");
/** Index encoding version written by this code; decode accepts exactly this. */
export const INDEX_VERSION = 1;

/** Length of the common prefix of two byte strings. */
function commonPrefix(a: Buffer, b: Buffer): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a[i] === b[i]) i++;
  return i;
}

const TYPE_CODES: EntryType[] = ["file", "hardlink", "symlink", "chardev", "blockdev", "dir", "fifo"];
const F_LINK = 1;
const F_DEV = 2;
const F_XATTR = 4;
const F_NSEC = 8;

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
  /** Uncompressed length: `chunkSize`, less for the last chunk. */
  uncompressedLength: number;
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
}

/**
 * The offset/length index of one lazy layer: every tar entry and the chunk
 * table. Chunks cover the uncompressed stream in fixed `chunkSize` steps
 * (the last may be shorter); chunk `i` holds uncompressed bytes
 * `[i*chunkSize, min((i+1)*chunkSize, uncompressedSize))`.
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
  private byPath: PathTable | undefined;
  private pathHashes: Uint32Array | undefined;

  constructor(init: LayerIndexInit) {
    const expected = init.uncompressedSize === 0 ? 0 : Math.ceil(init.uncompressedSize / init.chunkSize);
    if (init.chunkLengths.length !== expected || init.chunkDigests.length !== expected) {
      throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `index has ${init.chunkLengths.length} chunks, expected ${expected}`);
    }
    this.chunkSize = init.chunkSize;
    this.uncompressedSize = init.uncompressedSize;
    this.entries = init.entries;
    this.prefetch = init.prefetch ?? [];
    this.lengths = init.chunkLengths;
    this.digests = init.chunkDigests;
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
    const uncompressedOffset = i * this.chunkSize;
    return {
      index: i,
      offset: this.offsets[i]!,
      length: this.lengths[i]!,
      digest: this.digests[i]!,
      uncompressedOffset,
      uncompressedLength: Math.min(this.chunkSize, this.uncompressedSize - uncompressedOffset),
    };
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
    return { first: Math.floor(offset / this.chunkSize), last: Math.floor((offset + length - 1) / this.chunkSize) };
  }

  /** Binary encoding of this index (see `decode`). Deterministic. */
  encode(): Buffer {
    const w = new ByteWriter();
    w.bytes(MAGIC);
    w.uint(INDEX_VERSION);
    w.uint(this.chunkSize);
    w.uint(this.uncompressedSize);
    w.uint(this.lengths.length);
    for (const l of this.lengths) w.uint(l);
    for (const d of this.digests) w.bytes(d);
    w.uint(this.entries.length);
    let prevPath = Buffer.alloc(0);
    let prevEnd = 0;
    for (const e of this.entries) {
      const path = Buffer.from(e.path, "utf8");
      const common = commonPrefix(prevPath, path);
      let flags = 0;
      if (e.linkname !== undefined) flags |= F_LINK;
      if (e.devmajor !== undefined || e.devminor !== undefined) flags |= F_DEV;
      if (e.xattrs && e.xattrs.size > 0) flags |= F_XATTR;
      if (e.mtimeNsec !== 0) flags |= F_NSEC;
      w.byte(TYPE_CODES.indexOf(e.type));
      w.byte(flags);
      w.uint(common);
      w.blob(path.subarray(common));
      w.uint(e.mode);
      w.uint(e.uid);
      w.uint(e.gid);
      w.int(e.mtimeSec);
      if (flags & F_NSEC) w.uint(e.mtimeNsec);
      w.uint(e.size);
      w.uint(e.dataOffset - prevEnd);
      if (flags & F_LINK) w.blob(Buffer.from(e.linkname!, "utf8"));
      if (flags & F_DEV) {
        w.uint(e.devmajor ?? 0);
        w.uint(e.devminor ?? 0);
      }
      if (flags & F_XATTR) {
        const keys = [...e.xattrs!.keys()].sort();
        w.uint(keys.length);
        for (const k of keys) {
          w.blob(Buffer.from(k, "utf8"));
          w.blob(e.xattrs!.get(k)!);
        }
      }
      prevPath = path;
      prevEnd = e.dataOffset + e.size;
    }
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
    const count = r.uint();
    if (count > r.remaining) throw fail("index entry count is malformed");
    const entries = new Array<TarEntry>(count);
    const hashes = new Uint32Array(count);
    // Paths are rebuilt in one scratch buffer (prefix kept, suffix copied in)
    // so each becomes one flat string without intermediate allocations.
    let scratch = Buffer.alloc(4096);
    let prevLen = 0;
    let prevEnd = 0;
    for (let i = 0; i < count; i++) {
      const type = TYPE_CODES[r.byte()];
      if (!type) throw fail(`entry ${i} has an unknown type`);
      const flags = r.byte();
      const common = r.uint();
      if (common > prevLen) throw fail(`entry ${i} has a bad path prefix`);
      const suffixLen = r.uint();
      if (suffixLen > r.remaining) throw fail("index truncated");
      const len = common + suffixLen;
      if (len > scratch.length) {
        const next = Buffer.alloc(Math.max(len, scratch.length * 2));
        scratch.copy(next, 0, 0, common);
        scratch = next;
      }
      buf.copy(scratch, common, r.pos, r.pos + suffixLen);
      r.pos += suffixLen;
      const path = scratch.toString("utf8", 0, len);
      if (!isNormalizedTarPath(path)) throw fail(`entry ${i} has a path that is absolute, escapes the layer root or is not clean: ${JSON.stringify(path)}`);
      hashes[i] = hashBytes(scratch, 0, len);
      prevLen = len;
      const e: TarEntry = {
        path,
        type,
        mode: r.uint(),
        uid: r.uint(),
        gid: r.uint(),
        mtimeSec: r.int(),
        mtimeNsec: flags & F_NSEC ? r.uint() : 0,
        size: r.uint(),
        dataOffset: 0,
      };
      e.dataOffset = prevEnd + r.uint();
      if (e.dataOffset + e.size > uncompressedSize) throw fail(`entry ${e.path} runs past the end of the layer`);
      if (flags & F_LINK) {
        e.linkname = r.string();
        if (type === "hardlink" && !isNormalizedTarPath(e.linkname)) throw fail(`hardlink ${JSON.stringify(path)} names a target outside the layer: ${JSON.stringify(e.linkname)}`);
      }
      if (flags & F_DEV) {
        e.devmajor = r.uint();
        e.devminor = r.uint();
      }
      if (flags & F_XATTR) {
        const k = r.uint();
        if (k > r.remaining) throw fail("xattr count is malformed");
        e.xattrs = new Map();
        for (let j = 0; j < k; j++) e.xattrs.set(r.blob().toString("utf8"), new Uint8Array(r.blob()));
      }
      entries[i] = e;
      prevEnd = e.dataOffset + e.size;
    }
    const p = r.uint();
    if (p > r.remaining) throw fail("prefetch list is malformed");
    const prefetch = new Array<number>(p);
    for (let i = 0; i < p; i++) {
      prefetch[i] = r.uint();
      if (prefetch[i]! >= n) throw fail("prefetch list names a chunk out of range");
    }
    if (r.remaining !== 0) throw fail("trailing bytes after the index");
    const index = new LayerIndex({ chunkSize, uncompressedSize, chunkLengths, chunkDigests, entries, prefetch });
    index.pathHashes = hashes;
    return index;
  }
}
