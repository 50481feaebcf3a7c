/**
 * A minimal, deterministic tar writer for test fixtures. It produces exact
 * bytes (no timestamps, no host lookups) and reports where every header and
 * data payload lands in the stream, so fixtures can place files on chunk
 * boundaries.
 */
import {
  BLOCK, concatBytes, fitsOctal, paddedSize, paxRecord, putBase256, putBytes, putChecksum,
  putMagic, putOctal, truncateUtf8, utf8,
} from "./tar-header.ts";

/** Entry kinds and their typeflags: 0 file, 1 hardlink, 2 symlink, 3 char, 4 block, 5 dir, 6 fifo. */
export type TarEntryType = "file" | "hardlink" | "symlink" | "char" | "block" | "dir" | "fifo";

/**
 * Header format of one entry.
 * - "ustar": POSIX ustar only (name may use the 155-byte prefix); anything that
 *   does not fit (long names, big ids, xattrs, fractional mtime) throws.
 * - "pax": ustar plus a preceding PAX 'x' header carrying whatever does not fit
 *   (and any `forcePax` fields, xattrs, extra records). No 'x' header when
 *   nothing needs one.
 * - "gnu": old GNU format (magic "ustar  "): long names/link targets via 'L'/'K'
 *   entries, numbers that overflow octal in base-256. No xattrs, no prefix.
 */
export type TarFormat = "ustar" | "pax" | "gnu";

/** Header fields that can be forced into a PAX record even when they fit. */
export type PaxField = "path" | "linkpath" | "size" | "uid" | "gid" | "uname" | "gname" | "mtime";

/** One tar entry. Omitted fields get fixed defaults (never host-dependent). */
export interface TarSpec {
  /** Path as stored (e.g. "etc/passwd" or "./etc/passwd"); dirs get a trailing "/" if missing. */
  path: string;
  type: TarEntryType;
  /** Defaults to the writer's `defaultFormat` ("pax"). */
  format?: TarFormat;
  /** Permission bits incl. setuid/setgid/sticky (0o7777). Default 0o644, dirs 0o755, symlinks 0o777, devices 0o666. */
  mode?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  /** Whole seconds since the epoch. Default {@link DEFAULT_MTIME}. */
  mtime?: number;
  /** Nanoseconds 0..999999999 added to `mtime`; non-zero requires "pax". */
  mtimeNsec?: number;
  /** File contents (type "file" only). Default empty. */
  data?: Uint8Array;
  /** Target of a symlink or hardlink (hardlink targets are archive paths). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, written as PAX `SCHILY.xattr.<name>` records (pax only). */
  xattrs?: Record<string, string | Uint8Array>;
  /** Fields to emit as PAX records even though they fit the ustar header. */
  forcePax?: PaxField[];
  /** Extra PAX records appended after the generated ones (pax only). */
  paxRecords?: Record<string, string>;
}

/** Where an entry landed in the archive (byte offsets from the start of the tar). */
export interface TarEntryLayout {
  /** Path as written (with the trailing "/" of directories). */
  path: string;
  type: TarEntryType;
  /** Offset of the first header block, including any 'x', 'L' or 'K' blocks. */
  headerOffset: number;
  /** Offset of the main header block of the entry. */
  mainHeaderOffset: number;
  /** Offset of the first data byte (= end of headers; also for empty entries). */
  dataOffset: number;
  /** Data bytes (0 for everything but files). */
  size: number;
}

/** Default mtime: 2023-11-14T22:13:20Z. */
export const DEFAULT_MTIME = 1_700_000_000;

const TYPEFLAG: Record<TarEntryType, string> = {
  file: "0", hardlink: "1", symlink: "2", char: "3", block: "4", dir: "5", fifo: "6",
};

const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644, hardlink: 0o644, symlink: 0o777, char: 0o666, block: 0o666, dir: 0o755, fifo: 0o644,
};

interface Fields {
  name: string;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

/** Splits `name` into ustar prefix/name, or returns undefined if impossible. */
function splitUstar(name: string): { prefix: Uint8Array; name: Uint8Array } | undefined {
  const b = utf8(name);
  if (b.length <= 100) return { prefix: new Uint8Array(0), name: b };
  for (let i = b.length - 1; i > 0; i--) {
    if (b[i] !== 0x2f) continue;
    if (i <= 155 && b.length - i - 1 <= 100 && b.length - i - 1 > 0) {
      return { prefix: b.subarray(0, i), name: b.subarray(i + 1) };
    }
  }
  return undefined;
}

/** Builds one header block. Numbers that do not fit must already be handled by the caller. */
function headerBlock(f: Fields, format: TarFormat, prefix: Uint8Array, name: Uint8Array, link: Uint8Array): Uint8Array {
  const b = new Uint8Array(BLOCK);
  const gnu = format === "gnu";
  const num = (off: number, width: number, v: number): void => {
    if (fitsOctal(v, width)) putOctal(b, off, width, v);
    else if (gnu) putBase256(b, off, width, v);
    else putOctal(b, off, width, 0); // overridden by a PAX record
  };
  putBytes(b, 0, 100, name, `name of ${f.name}`);
  putOctal(b, 100, 8, f.mode);
  num(108, 8, f.uid);
  num(116, 8, f.gid);
  num(124, 12, f.size);
  num(136, 12, f.mtime);
  b[156] = f.typeflag.charCodeAt(0);
  putBytes(b, 157, 100, link, `linkname of ${f.name}`);
  putMagic(b, gnu);
  putBytes(b, 265, 32, truncateUtf8(f.uname, 32), "uname");
  putBytes(b, 297, 32, truncateUtf8(f.gname, 32), "gname");
  num(329, 8, f.devmajor);
  num(337, 8, f.devminor);
  if (!gnu) putBytes(b, 345, 155, prefix, `prefix of ${f.name}`);
  putChecksum(b);
  return b;
}

/** A pseudo-entry ('x', 'L', 'K') header followed by its padded payload. */
function metaEntry(format: TarFormat, typeflag: string, name: string, payload: Uint8Array): Uint8Array {
  const f: Fields = {
    name, typeflag, mode: 0o644, uid: 0, gid: 0, size: payload.length, mtime: 0,
    linkname: "", uname: "", gname: "", devmajor: 0, devminor: 0,
  };
  const hdr = headerBlock(f, format, new Uint8Array(0), truncateUtf8(name, 100), new Uint8Array(0));
  const body = new Uint8Array(paddedSize(payload.length));
  body.set(payload);
  return concatBytes([hdr, body]);
}

function fail(e: TarSpec, why: string): never {
  throw new Error(`tar: entry ${JSON.stringify(e.path)} (${e.format ?? "default"} format): ${why}`);
}

/**
 * Encodes the header blocks of `entry` ('x'/'L'/'K' pseudo-entries followed by
 * the main header). Throws when the entry cannot be represented in its format.
 */
export function encodeHeaders(entry: TarSpec, defaultFormat: TarFormat = "pax"): Uint8Array {
  const format = entry.format ?? defaultFormat;
  const e = { ...entry, format };
  const type = entry.type;
  const path = type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
  if (type !== "file" && entry.data && entry.data.length > 0) fail(e, "only files carry data");
  if ((type === "symlink" || type === "hardlink") && !entry.linkname) fail(e, "link without linkname");
  const f: Fields = {
    name: path, typeflag: TYPEFLAG[type], mode: entry.mode ?? DEFAULT_MODE[type],
    uid: entry.uid ?? 0, gid: entry.gid ?? 0, size: type === "file" ? (entry.data?.length ?? 0) : 0,
    mtime: entry.mtime ?? DEFAULT_MTIME, linkname: entry.linkname ?? "",
    uname: entry.uname ?? "", gname: entry.gname ?? "",
    devmajor: entry.devmajor ?? 0, devminor: entry.devminor ?? 0,
  };
  if (!fitsOctal(f.mode, 8) || f.mode > 0o7777) fail(e, `mode ${f.mode.toString(8)} outside 0o7777`);
  const nsec = entry.mtimeNsec ?? 0;
  if (!Number.isInteger(nsec) || nsec < 0 || nsec > 999_999_999) fail(e, "mtimeNsec out of range");
  const force = new Set(entry.forcePax ?? []);
  const xattrs = Object.entries(entry.xattrs ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const blocks: Uint8Array[] = [];

  if (format === "gnu") {
    if (xattrs.length > 0 || force.size > 0 || entry.paxRecords) fail(e, "PAX features need format pax");
    if (nsec !== 0) fail(e, "fractional mtime needs format pax");
    if (utf8(f.uname).length > 32 || utf8(f.gname).length > 32) fail(e, "uname/gname longer than 32 bytes");
    for (const v of [f.devmajor, f.devminor]) if (!fitsOctal(v, 8)) fail(e, "device number too large");
    const nameB = utf8(path);
    const linkB = utf8(f.linkname);
    if (linkB.length > 100) blocks.push(metaEntry("gnu", "K", "././@LongLink", concatBytes([linkB, new Uint8Array(1)])));
    if (nameB.length > 100) blocks.push(metaEntry("gnu", "L", "././@LongLink", concatBytes([nameB, new Uint8Array(1)])));
    blocks.push(headerBlock(f, "gnu", new Uint8Array(0), truncateUtf8(path, 100), truncateUtf8(f.linkname, 100)));
    return concatBytes(blocks);
  }

  const records: Uint8Array[] = [];
  const split = force.has("path") ? undefined : splitUstar(path);
  const linkB = utf8(f.linkname);
  const needs = (field: PaxField, fits: boolean): boolean => force.has(field) || !fits;
  const paxPath = needs("path", split !== undefined);
  const paxLink = needs("linkpath", linkB.length <= 100);
  if (paxPath) records.push(paxRecord("path", path));
  if (paxLink) records.push(paxRecord("linkpath", f.linkname));
  if (needs("size", fitsOctal(f.size, 12))) records.push(paxRecord("size", String(f.size)));
  if (needs("uid", fitsOctal(f.uid, 8))) records.push(paxRecord("uid", String(f.uid)));
  if (needs("gid", fitsOctal(f.gid, 8))) records.push(paxRecord("gid", String(f.gid)));
  if (needs("uname", utf8(f.uname).length <= 32)) records.push(paxRecord("uname", f.uname));
  if (needs("gname", utf8(f.gname).length <= 32)) records.push(paxRecord("gname", f.gname));
  if (needs("mtime", nsec === 0 && fitsOctal(f.mtime, 12))) {
    const frac = nsec === 0 ? "" : `.${String(nsec).padStart(9, "0").replace(/0+$/, "")}`;
    if (frac && f.mtime < 0) fail(e, "negative fractional mtime not supported");
    records.push(paxRecord("mtime", `${f.mtime}${frac}`));
  }
  for (const [k, v] of xattrs) records.push(paxRecord(`SCHILY.xattr.${k}`, v));
  for (const [k, v] of Object.entries(entry.paxRecords ?? {})) records.push(paxRecord(k, v));
  for (const v of [f.devmajor, f.devminor]) if (!fitsOctal(v, 8)) fail(e, "device number too large");
  if (format === "ustar" && records.length > 0) fail(e, "does not fit ustar (needs PAX records)");
  if (records.length > 0) {
    const slash = path.replace(/\/$/, "").lastIndexOf("/");
    const base = path.replace(/\/$/, "").slice(slash + 1);
    blocks.push(metaEntry("pax", "x", `PaxHeaders.0/${base}`, concatBytes(records)));
  }
  const nameParts = split ?? { prefix: new Uint8Array(0), name: truncateUtf8(path, 100) };
  blocks.push(headerBlock(f, "pax", nameParts.prefix, nameParts.name, paxLink ? truncateUtf8(f.linkname, 100) : linkB));
  return concatBytes(blocks);
}

/**
 * Incremental tar writer. `add` appends an entry and returns its layout;
 * `finish` appends the end-of-archive marker and returns the whole archive.
 */
export class TarWriter {
  readonly defaultFormat: TarFormat;
  #parts: Uint8Array[] = [];
  #offset = 0;
  #layout: TarEntryLayout[] = [];
  #finished = false;

  /** `defaultFormat` applies to entries without `format` (default "pax"). */
  constructor(opts: { defaultFormat?: TarFormat } = {}) {
    this.defaultFormat = opts.defaultFormat ?? "pax";
  }

  /** Bytes written so far: the offset at which the next entry's first header starts. */
  get offset(): number {
    return this.#offset;
  }

  /** Layouts of the entries added so far, in order. */
  get layout(): readonly TarEntryLayout[] {
    return this.#layout;
  }

  /** Bytes of header blocks (incl. 'x'/'L'/'K') that `add(entry)` would write before the data. */
  headerSize(entry: TarSpec): number {
    return encodeHeaders(entry, this.defaultFormat).length;
  }

  /** Appends `entry` (headers, data, zero padding to a block boundary). */
  add(entry: TarSpec): TarEntryLayout {
    if (this.#finished) throw new Error("tar: add after finish");
    const headers = encodeHeaders(entry, this.defaultFormat);
    const data = entry.type === "file" ? (entry.data ?? new Uint8Array(0)) : new Uint8Array(0);
    const path = entry.type === "dir" && !entry.path.endsWith("/") ? `${entry.path}/` : entry.path;
    const l: TarEntryLayout = {
      path, type: entry.type, headerOffset: this.#offset,
      mainHeaderOffset: this.#offset + headers.length - BLOCK,
      dataOffset: this.#offset + headers.length, size: data.length,
    };
    this.#parts.push(headers, data);
    const pad = paddedSize(data.length) - data.length;
    if (pad > 0) this.#parts.push(new Uint8Array(pad));
    this.#offset += headers.length + paddedSize(data.length);
    this.#layout.push(l);
    return l;
  }

  /**
   * Appends two zero blocks, then zeros up to a multiple of `recordSize` if
   * given (GNU tar pads to 10240-byte records; Go's archive/tar does not).
   */
  finish(opts: { recordSize?: number } = {}): Uint8Array {
    if (this.#finished) throw new Error("tar: finish twice");
    this.#finished = true;
    let end = this.#offset + 2 * BLOCK;
    if (opts.recordSize) end = Math.ceil(end / opts.recordSize) * opts.recordSize;
    this.#parts.push(new Uint8Array(end - this.#offset));
    this.#offset = end;
    return concatBytes(this.#parts);
  }
}

/** Convenience: writes `entries` in order and returns the archive and layouts. */
export function writeTar(
  entries: readonly TarSpec[],
  opts: { defaultFormat?: TarFormat; recordSize?: number } = {},
): { tar: Uint8Array; layout: TarEntryLayout[] } {
  const w = new TarWriter(opts);
  for (const e of entries) w.add(e);
  const tar = w.finish(opts);
  return { tar, layout: [...w.layout] };
}
