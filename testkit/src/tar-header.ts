/**
 * Low-level tar header encoding shared by the tar writer: one 512-byte header
 * block per call, numeric fields in octal or GNU base-256, PAX records.
 * Layout (POSIX ustar; GNU reuses the prefix area for atime/ctime etc.):
 *   name 0+100, mode 100+8, uid 108+8, gid 116+8, size 124+12, mtime 136+12,
 *   chksum 148+8, typeflag 156, linkname 157+100, magic 257+6, version 263+2,
 *   uname 265+32, gname 297+32, devmajor 329+8, devminor 337+8,
 *   prefix 345+155 (ustar only).
 */

/** Size of a tar block; headers and data padding are multiples of it. */
export const BLOCK = 512;

const enc = new TextEncoder();

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return enc.encode(s);
}

/** The largest value an octal field of `width` bytes holds (width-1 digits + NUL). */
export function octalMax(width: number): number {
  return 8 ** (width - 1) - 1;
}

/** Whether `value` fits the octal encoding of a `width`-byte numeric field. */
export function fitsOctal(value: number, width: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= octalMax(width);
}

/**
 * Writes `value` at `off` as zero-padded octal of width-1 digits plus a NUL.
 * Throws if it does not fit.
 */
export function putOctal(block: Uint8Array, off: number, width: number, value: number): void {
  if (!fitsOctal(value, width)) throw new RangeError(`tar: ${value} does not fit a ${width}-byte octal field`);
  const s = value.toString(8).padStart(width - 1, "0");
  block.set(utf8(s), off);
  block[off + width - 1] = 0;
}

/**
 * Writes `value` at `off` in GNU base-256: big-endian two's complement over the
 * whole field with the top bit of the first byte set (so negative values work
 * too). Throws if the value needs more than width*8-1 bits.
 */
export function putBase256(block: Uint8Array, off: number, width: number, value: number | bigint): void {
  let v = BigInt(value);
  const bits = BigInt(width * 8 - 1);
  const limit = 1n << bits;
  if (v >= limit || v < -limit) throw new RangeError(`tar: ${value} does not fit a ${width}-byte base-256 field`);
  if (v < 0n) v += 1n << BigInt(width * 8);
  for (let i = width - 1; i >= 0; i--) {
    block[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  block[off] = (block[off] ?? 0) | 0x80;
}

/** Writes `bytes` at `off`; throws if longer than `width` (NUL-padded otherwise). */
export function putBytes(block: Uint8Array, off: number, width: number, bytes: Uint8Array, what: string): void {
  if (bytes.length > width) throw new RangeError(`tar: ${what} is ${bytes.length} bytes, field holds ${width}`);
  block.set(bytes, off);
}

/** The first at most `max` bytes of UTF-8 `s`, never splitting a code point. */
export function truncateUtf8(s: string, max: number): Uint8Array {
  const b = utf8(s);
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && ((b[end] ?? 0) & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

/** Fills the checksum field: unsigned byte sum with the field as 8 spaces, "%06o\0 ". */
export function putChecksum(block: Uint8Array): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i] ?? 0;
  block.set(utf8(sum.toString(8).padStart(6, "0")), 148);
  block[154] = 0;
  block[155] = 0x20;
}

/** Header magic/version: POSIX "ustar\0" "00" or old GNU "ustar " " \0". */
export function putMagic(block: Uint8Array, gnu: boolean): void {
  block.set(utf8(gnu ? "ustar  " : "ustar\u000000"), 257);
}

/**
 * One PAX extended header record, "<len> <key>=<value>\n", where len counts
 * the whole record in bytes including its own digits.
 */
export function paxRecord(key: string, value: string | Uint8Array): Uint8Array {
  const k = utf8(key);
  const v = typeof value === "string" ? utf8(value) : value;
  const rest = 1 + k.length + 1 + v.length + 1; // " " key "=" value "\n"
  let len = rest + 1;
  while (String(len).length + rest !== len) len = String(len).length + rest;
  const out = new Uint8Array(len);
  let o = 0;
  const head = utf8(`${len} ${key}=`);
  out.set(head, o);
  o += head.length;
  out.set(v, o);
  o += v.length;
  out[o] = 0x0a;
  return out;
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Number of bytes `size` bytes of entry data occupy once padded to whole blocks. */
export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}
