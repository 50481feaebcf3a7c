import type { ErrorCode } from "@shoal/base";
import { LayerFormatError } from "./errors.ts";
import type { EntryType, TarEntry } from "./tar-entry.ts";
import { normalizeTarPath } from "./tar-path.ts";
import { parsePaxRecords, type PaxOverrides } from "./tar-pax.ts";

const BLOCK = 512;
/** Largest PAX or GNU long-name payload we accept; anything bigger is hostile. */
export const MAX_META_BYTES = 1 << 20;

const TYPES: Record<string, EntryType> = {
  "0": "file", "\0": "file", "7": "file",
  "1": "hardlink", "2": "symlink", "3": "chardev", "4": "blockdev", "5": "dir", "6": "fifo",
};

type State =
  | { kind: "header" }
  | { kind: "meta"; flag: string; remaining: number; padded: number; parts: Buffer[] }
  | { kind: "data"; remaining: number }
  | { kind: "end" };

/**
 * Incremental tar parser that knows the offset of every entry.
 *
 * Feed the uncompressed stream with `push()` in pieces of any size, then call
 * `end()`. Each complete entry is passed to `onEntry` as soon as its header
 * has been read (the data is skipped, not buffered). Memory is bounded by one
 * block plus the largest PAX/GNU long-name payload (`MAX_META_BYTES`).
 * Errors are `LayerFormatError`s naming the layer and the tar offset.
 */
export class TarParser {
  private readonly onEntry: (entry: TarEntry) => void;
  private readonly layer: string | undefined;
  private state: State = { kind: "header" };
  private pending = Buffer.alloc(0);
  /** Offset of the first byte not yet consumed. */
  private pos = 0;
  private pax: PaxOverrides = {};
  private globalPax: PaxOverrides = {};
  private gnuLongName: string | undefined;
  private gnuLongLink: string | undefined;
  private metaStart = -1;

  constructor(onEntry: (entry: TarEntry) => void, init: { layer?: string } = {}) {
    this.onEntry = onEntry;
    this.layer = init.layer;
  }

  /** True once the end-of-archive marker has been seen. */
  get finished(): boolean {
    return this.state.kind === "end";
  }

  /** Consume the next piece of the uncompressed stream. */
  push(chunk: Uint8Array): void {
    let buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    while (buf.length > 0) {
      const st = this.state;
      if (st.kind === "end") {
        this.pos += buf.length;
        return;
      }
      if (st.kind === "data") {
        const n = Math.min(st.remaining, buf.length);
        st.remaining -= n;
        this.pos += n;
        buf = buf.subarray(n);
        if (st.remaining === 0) this.state = { kind: "header" };
        continue;
      }
      if (st.kind === "meta") {
        const n = Math.min(st.padded, buf.length);
        const keep = Math.min(n, st.remaining);
        if (keep > 0) st.parts.push(Buffer.from(buf.subarray(0, keep)));
        st.remaining -= keep;
        st.padded -= n;
        this.pos += n;
        buf = buf.subarray(n);
        if (st.padded === 0) this.finishMeta(st.flag, Buffer.concat(st.parts));
        continue;
      }
      // header: need a whole block
      if (this.pending.length > 0 || buf.length < BLOCK) {
        const need = BLOCK - this.pending.length;
        const take = buf.subarray(0, need);
        this.pending = Buffer.concat([this.pending, take]);
        buf = buf.subarray(take.length);
        if (this.pending.length < BLOCK) return;
        const block = this.pending;
        this.pending = Buffer.alloc(0);
        this.header(block);
      } else {
        this.header(buf.subarray(0, BLOCK));
        buf = buf.subarray(BLOCK);
      }
    }
  }

  /** Signal end of input. Throws if the stream stopped inside an entry or before the end marker. */
  end(): void {
    if (this.state.kind === "end") return;
    if (this.state.kind === "header" && this.pending.length === 0 && this.metaStart < 0) {
      // Some writers omit the end-of-archive blocks; a stream ending cleanly
      // between entries is accepted, as GNU tar and Go's archive/tar do.
      this.state = { kind: "end" };
      return;
    }
    throw this.error("SHOAL_ERR_TAR_TRUNCATED", "tar stream ends inside an entry", this.pos);
  }

  private error(code: ErrorCode, message: string, offset: number): LayerFormatError {
    return new LayerFormatError(code, message, { layer: this.layer, tarOffset: offset });
  }

  private header(block: Buffer): void {
    const start = this.pos;
    this.pos += BLOCK;
    if (isZero(block)) {
      if (this.metaStart >= 0) throw this.error("SHOAL_ERR_TAR_TRUNCATED", "end of archive after an extended header", start);
      this.state = { kind: "end" };
      return;
    }
    verifyChecksum(block, () => this.error("SHOAL_ERR_TAR_CHECKSUM", "tar header checksum mismatch", start));
    if (this.metaStart < 0) this.metaStart = start;
    const flag = String.fromCharCode(block[156]!);
    const size = this.num(block, 124, 12, start);
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_META_BYTES) {
        throw this.error("SHOAL_ERR_TAR_META_TOO_LARGE", `extended header of ${size} bytes exceeds ${MAX_META_BYTES}`, start);
      }
      this.state = { kind: "meta", flag, remaining: size, padded: padTo(size), parts: [] };
      if (size === 0) this.finishMeta(flag, Buffer.alloc(0));
      return;
    }
    if (flag === "S" || flag === "M" || flag === "V") {
      throw this.error("SHOAL_ERR_TAR_UNSUPPORTED", `unsupported GNU tar entry type '${flag}'`, start);
    }
    const type = TYPES[flag] ?? "file"; // POSIX: unknown types are read as regular files
    const isUstar = block.toString("latin1", 257, 263) === "ustar\0";
    let name = cstr(block, 0, 100);
    if (isUstar) {
      const prefix = cstr(block, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = { ...this.globalPax, ...this.pax };
    const rawPath = pax.path ?? this.gnuLongName ?? name;
    const rawLink = pax.linkpath ?? this.gnuLongLink ?? cstr(block, 157, 100);
    const headerStart = this.metaStart;
    this.pax = {};
    this.gnuLongName = undefined;
    this.gnuLongLink = undefined;
    this.metaStart = -1;

    const path = normalizeTarPath(rawPath, (msg) => this.error("SHOAL_ERR_TAR_BAD_PATH", msg, headerStart));
    const dataSize = pax.size ?? size;
    const entry: TarEntry = {
      path,
      type,
      mode: this.num(block, 100, 8, start) & 0o7777,
      uid: pax.uid ?? this.num(block, 108, 8, start),
      gid: pax.gid ?? this.num(block, 116, 8, start),
      mtimeSec: pax.mtimeSec ?? this.num(block, 136, 12, start, true),
      mtimeNsec: pax.mtimeNsec ?? 0,
      size: type === "file" ? dataSize : 0,
      dataOffset: this.pos,
    };
    if (type === "hardlink") {
      entry.linkname = normalizeTarPath(rawLink, (msg) => this.error("SHOAL_ERR_TAR_BAD_PATH", `hardlink target: ${msg}`, headerStart));
    } else if (type === "symlink") {
      entry.linkname = rawLink;
    }
    if (type === "chardev" || type === "blockdev") {
      entry.devmajor = this.num(block, 329, 8, start);
      entry.devminor = this.num(block, 337, 8, start);
    }
    if (pax.xattrs && pax.xattrs.size > 0) entry.xattrs = pax.xattrs;
    this.onEntry(entry);
    // Go's archive/tar and GNU tar skip no data for header-only types.
    const skip = type === "file" ? padTo(dataSize) : 0;
    this.state = skip > 0 ? { kind: "data", remaining: skip } : { kind: "header" };
  }

  private finishMeta(flag: string, data: Buffer): void {
    const at = this.pos - padTo(data.length);
    if (flag === "L" || flag === "K") {
      const value = cstr(data, 0, data.length);
      if (flag === "L") this.gnuLongName = value;
      else this.gnuLongLink = value;
    } else {
      const parsed = parsePaxRecords(data, (msg) => this.error("SHOAL_ERR_TAR_BAD_PAX", msg, at));
      if (flag === "g") this.globalPax = { ...this.globalPax, ...parsed };
      else this.pax = { ...this.pax, ...parsed };
    }
    this.state = { kind: "header" };
  }

  private num(block: Buffer, off: number, len: number, at: number, signed = false): number {
    const v = parseNumeric(block, off, len, signed);
    if (v === undefined) throw this.error("SHOAL_ERR_TAR_BAD_NUMBER", `bad numeric field at header byte ${off}`, at);
    return v;
  }
}

function padTo(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

function isZero(block: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

function cstr(buf: Buffer, off: number, len: number): string {
  let end = off;
  const max = Math.min(buf.length, off + len);
  while (end < max && buf[end] !== 0) end++;
  return buf.toString("utf8", off, end);
}

function verifyChecksum(block: Buffer, fail: () => Error): void {
  const stored = parseNumeric(block, 148, 8, false);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored === undefined || (stored !== unsigned && stored !== signed)) throw fail();
}

/**
 * Parse a tar numeric field: octal (space/NUL padded) or GNU base-256 (high
 * bit of the first byte set). Returns undefined when malformed or beyond
 * Number.MAX_SAFE_INTEGER.
 */
export function parseNumeric(buf: Buffer, off: number, len: number, signed: boolean): number | undefined {
  const first = buf[off]!;
  if (first & 0x80) {
    // GNU base-256: big-endian two's complement; 0x80 marks positive, 0xff negative.
    const negative = first === 0xff;
    if (negative && !signed) return undefined;
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(i === 0 && !negative ? first & 0x7f : buf[off + i]!);
    if (negative) v -= 1n << BigInt(8 * len);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    return Number(v);
  }
  let i = off;
  const end = off + len;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0)) i++;
  let v = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) return undefined;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < end; i++) if (buf[i] !== 0x20 && buf[i] !== 0) return undefined;
  if (digits === 0) return 0;
  return v > Number.MAX_SAFE_INTEGER ? undefined : v;
}
