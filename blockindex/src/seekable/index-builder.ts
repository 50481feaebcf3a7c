/**
 * Building the seekable index of an ordinary gzip layer from one read of
 * the blob, in order, in bounded memory: the `InflateScanner` inflates it
 * and reports block boundaries, the `TarParser` records the entries, and
 * the builder cuts the compressed stream into spans:
 *
 * - a span starts at a checkpoint, taken at the first block boundary at
 *   least `spacing` uncompressed bytes after the span's start, and at the
 *   first block of every gzip member (inflating cannot cross members);
 * - spans cover the blob from its first byte to its last, each from where
 *   the one before ended (a span that starts mid-byte shares that byte with
 *   the one before): what lies between deflate data (gzip headers and
 *   trailers, a stored block's header) is the next span's `skip`, what
 *   follows the last member the last span's `tail`. So the blob is its spans
 *   end to end, and a host holding them all can check the blob's digest;
 * - a span that starts mid-byte holds no stored block (see
 *   `span-reader.ts`): it ends at one; the stored block's data becomes a
 *   span of its own (`stored`: its bytes are the data), and the block after
 *   it, which starts on a byte boundary, starts the next span;
 * - each span's sha256 covers exactly its bytes, and the blob's sha256 is
 *   computed over everything pushed, so the caller can check the blob
 *   before it trusts the spans.
 *
 * The blob's first bytes say what it is: gzip, or else an uncompressed tar
 * stream, whose spans are its bytes in `TAR_SPAN_BYTES` pieces (stored
 * spans: nothing to inflate, no checkpoints). zstd is refused.
 */
import { createHash, type Hash } from "node:crypto";
import { InvalidArgumentError } from "@shoal/base";
import { UnsupportedMediaTypeError } from "../errors.ts";
import { LayerIndex, type Checkpoint } from "../layer-index.ts";
import type { TarEntry } from "../tar-entry.ts";
import { TarParser } from "../tar-reader.ts";
import { InflateScanner, type BlockBoundary } from "./inflate-scanner.ts";
import { encodeSeekableIndex } from "./seekable-index.ts";

/** Default uncompressed bytes between checkpoints. */
export const DEFAULT_SPAN_SPACING = 1 << 20;
export const MIN_SPAN_SPACING = 64 << 10;
export const MAX_SPAN_SPACING = 64 << 20;
/** Span size of an uncompressed tar layer. */
export const TAR_SPAN_BYTES = 1 << 20;
/** Pushed bytes held back from hashing: a boundary the scanner has yet to report lies no further back than this. */
const HOLD_BACK = 64 << 10;

/** The span being cut. */
interface OpenSpan {
  offset: number;
  hashedTo: number;
  hash: Hash;
  out: number;
  checkpoint: Checkpoint;
}

/** What a build produces. */
export interface BuiltSeekableIndex {
  index: LayerIndex;
  /** `encodeSeekableIndex` of it: the index, and the window pack beside it. */
  bytes: Buffer;
  pack: Buffer;
  /** sha256 of the blob as pushed (compare with the manifest before trusting the index). */
  blobDigest: string;
  blobSize: number;
  /** sha256 of the uncompressed tar stream (compare with the config's `rootfs.diff_ids`). */
  diffId: string;
}

/** See the module comment. Push the blob with `push`, then call `end`. */
export class SeekableIndexBuilder {
  readonly #spacing: number;
  readonly #scanner: InflateScanner;
  readonly #tar: TarParser;
  readonly #entries: TarEntry[] = [];
  readonly #blob = createHash("sha256");
  /** The uncompressed tar stream's: the layer's diffID. */
  readonly #diff = createHash("sha256");
  #size = 0;
  /** Pushed bytes not yet hashed into a span; `#pendingBase` is the blob offset of the first. */
  #pending: Buffer[] = [];
  #pendingBase = 0;
  #span: OpenSpan | undefined;
  /** Where the last recorded span ended (its deflate data, before any tail): the next span starts here or in the byte before. */
  #cursor = 0;
  /** The last recorded span's hash, still open: the last span takes the blob's tail. */
  #lastHash: Hash | undefined;
  /** Take the next boundary offered (after a stored block, or a span that must end at one). */
  #forceNext = false;
  #out = 0;
  readonly #offsets: number[] = [];
  readonly #lengths: number[] = [];
  readonly #uoffsets: number[] = [];
  readonly #checkpoints: Checkpoint[] = [];
  readonly #digests: Buffer[] = [];
  /** What the blob is, once its first bytes arrived. */
  #format: "gzip" | "tar" | undefined;
  #head = Buffer.alloc(0);

  constructor(init: { spacing?: number; layer?: string } = {}) {
    this.#spacing = init.spacing ?? DEFAULT_SPAN_SPACING;
    if (!Number.isInteger(this.#spacing) || this.#spacing < MIN_SPAN_SPACING || this.#spacing > MAX_SPAN_SPACING) {
      throw new InvalidArgumentError(`span spacing must be an integer from ${MIN_SPAN_SPACING} to ${MAX_SPAN_SPACING} bytes, got ${init.spacing}`);
    }
    this.#tar = new TarParser((e) => this.#entries.push(e), init.layer ? { layer: init.layer } : {});
    this.#scanner = new InflateScanner({
      onData: (data) => {
        this.#out += data.length;
        this.#diff.update(data);
        this.#tar.push(data);
      },
      onBoundary: (b) => this.#wantCheckpoint(b),
      onCheckpoint: (b, window) => this.#checkpoint(b, b.memberStart ? new Uint8Array(0) : window),
      onStoredBlock: (b) => this.#storedBlock(b),
      onMemberEnd: (end) => this.#close(end.byte, end.out),
    });
  }

  /** The next bytes of the blob. */
  push(piece: Uint8Array): void {
    if (this.#format === undefined) {
      // four bytes tell gzip, zstd and tar apart
      this.#head = Buffer.concat([this.#head, piece]);
      if (this.#head.length < 4) return;
      this.#format = sniff(this.#head);
      piece = this.#head;
      this.#head = Buffer.alloc(0);
    }
    const buf = Buffer.from(piece);
    this.#blob.update(buf);
    this.#size += buf.length;
    if (this.#format === "tar") return this.#pushTar(buf);
    this.#pending.push(buf);
    this.#scanner.push(buf);
    const safe = this.#size - HOLD_BACK;
    if (this.#span && safe > this.#span.hashedTo) this.#hashTo(this.#span, safe);
    this.#drop(this.#span ? this.#span.hashedTo : Math.min(safe, this.#cursor));
  }

  /** The blob has ended: the index, or `SHOAL_ERR_GZIP_CORRUPT`/`SHOAL_ERR_BAD_TAR` when it is not a whole gzip tar stream. */
  end(): BuiltSeekableIndex {
    if (this.#format === undefined) {
      const head = this.#head;
      this.#head = Buffer.alloc(0);
      this.#format = sniff(head);
      if (head.length > 0) this.push(head);
    }
    if (this.#format === "tar") this.#endTar();
    else this.#scanner.end();
    this.#tar.end();
    const n = this.#lengths.length;
    if (n > 0 && this.#lastHash) {
      // the last span runs to the end of the blob (the last trailer, and whatever follows)
      const tail = this.#size - this.#cursor;
      this.#lastHash!.update(this.#slice(this.#cursor, this.#size));
      this.#lengths[n - 1]! += tail;
      this.#checkpoints[n - 1]!.tail = tail;
      this.#digests.push(this.#lastHash!.digest());
      this.#lastHash = undefined;
    }
    const index = new LayerIndex({
      chunkSize: this.#spacing,
      uncompressedSize: this.#out,
      chunkLengths: this.#lengths,
      chunkDigests: this.#digests,
      entries: this.#entries,
      spans: { offsets: this.#offsets, uncompressedOffsets: this.#uoffsets, checkpoints: this.#checkpoints },
    });
    const blobDigest = `sha256:${this.#blob.digest("hex")}`;
    const diffId = `sha256:${this.#diff.digest("hex")}`;
    const encoded = encodeSeekableIndex({ index, blob: { digest: blobDigest, size: this.#size, diffId } });
    return { index, bytes: encoded.bytes, pack: encoded.pack, blobDigest, blobSize: this.#size, diffId };
  }

  /** An uncompressed tar stream: fixed stored spans, hashed as the bytes pass. */
  #pushTar(buf: Buffer): void {
    this.#diff.update(buf);
    this.#tar.push(buf);
    let at = 0;
    while (at < buf.length) {
      if (!this.#span) this.#span = { offset: this.#out, hashedTo: this.#out, hash: createHash("sha256"), out: this.#out, checkpoint: { bit: 0, window: new Uint8Array(0), stored: true, skip: 0, tail: 0 } };
      const take = Math.min(buf.length - at, this.#span.offset + TAR_SPAN_BYTES - this.#out);
      this.#span.hash.update(buf.subarray(at, at + take));
      at += take;
      this.#out += take;
      if (this.#out - this.#span.offset === TAR_SPAN_BYTES) this.#endTar();
    }
  }

  #endTar(): void {
    const span = this.#span;
    this.#span = undefined;
    if (!span || this.#out === span.offset) return;
    this.#offsets.push(span.offset);
    this.#lengths.push(this.#out - span.offset);
    this.#uoffsets.push(span.out);
    this.#checkpoints.push(span.checkpoint);
    this.#digests.push(span.hash.digest());
  }

  #wantCheckpoint(b: BlockBoundary): boolean {
    if (b.memberStart || this.#forceNext || !this.#span) return true;
    return b.out - this.#span.out >= this.#spacing;
  }

  #checkpoint(b: BlockBoundary, window: Uint8Array): void {
    this.#forceNext = false;
    this.#close(Math.ceil(b.bit / 8), b.out);
    this.#open(Math.floor(b.bit / 8), b.out, { bit: b.bit % 8, window, skip: 0, tail: 0 });
  }

  #storedBlock(b: BlockBoundary): void {
    const span = this.#span;
    if (!span || span.checkpoint.bit === 0) return; // a byte-aligned span inflates across stored blocks
    if (b.bit % 8 === 0) {
      this.#forceNext = true; // offered next: the stored block starts a span
      return;
    }
    // the span ends at the stored block; the block's data (after its header, padding and lengths) is a span of its own
    this.#close(Math.ceil(b.bit / 8), b.out);
    this.#open(Math.ceil((b.bit + 3) / 8) + 4, b.out, { bit: 0, window: new Uint8Array(0), stored: true, skip: 0, tail: 0 });
    this.#forceNext = true;
  }

  /** Open a span whose data starts at blob byte `dataStart`: it starts where the last one ended (or in that byte), what lies between is its `skip`. */
  #open(dataStart: number, out: number, checkpoint: Checkpoint): void {
    const offset = Math.min(this.#cursor, dataStart);
    checkpoint.skip = dataStart - offset;
    this.#drop(offset);
    this.#span = { offset, hashedTo: offset, hash: createHash("sha256"), out, checkpoint };
  }

  /** End the open span where its data ends, at blob byte `dataEnd` (exclusive), uncompressed offset `out`; an empty one leaves no trace. */
  #close(dataEnd: number, out: number): void {
    const span = this.#span;
    if (!span) return;
    this.#span = undefined;
    if (out === span.out) return;
    const end = span.checkpoint.stored ? span.offset + span.checkpoint.skip + (out - span.out) : dataEnd;
    this.#hashTo(span, end);
    // the span before is complete now (the last one takes the blob's tail at the end)
    if (this.#lastHash) this.#digests.push(this.#lastHash.digest());
    this.#offsets.push(span.offset);
    this.#lengths.push(end - span.offset);
    this.#uoffsets.push(span.out);
    this.#checkpoints.push(span.checkpoint);
    this.#lastHash = span.hash;
    this.#cursor = end;
  }

  /** Hash pending bytes `[span.hashedTo, to)` into `span`. */
  #hashTo(span: OpenSpan, to: number): void {
    span.hash.update(this.#slice(span.hashedTo, to));
    span.hashedTo = to;
  }

  /** Pending bytes `[from, to)`. */
  #slice(from: number, to: number): Buffer {
    const parts: Buffer[] = [];
    let at = this.#pendingBase;
    for (const piece of this.#pending) {
      const end = at + piece.length;
      if (end > from && at < to) parts.push(piece.subarray(Math.max(0, from - at), Math.min(piece.length, to - at)));
      at = end;
      if (at >= to) break;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** Forget pending bytes before blob offset `before`. */
  #drop(before: number): void {
    while (this.#pending.length > 0 && this.#pendingBase + this.#pending[0]!.length <= before) this.#pendingBase += this.#pending.shift()!.length;
  }
}

/** What a blob whose first bytes are `head` is: gzip or tar; zstd is refused. */
function sniff(head: Buffer): "gzip" | "tar" {
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
    throw new UnsupportedMediaTypeError("zstd", "shoal reads gzip and uncompressed tar layers lazily, and converted ones (shoal convert)");
  }
  return "tar";
}
