import { InvalidArgumentError } from "@shoal/base";
import { crc32, deflateRaw, inflateRaw, inflateRawSync, constants } from "node:zlib";
import { promisify } from "node:util";
import { LayerFormatError } from "./errors.ts";
import { wholeOutputChunkSize } from "./inflate-buffer.ts";

const deflateRawAsync = promisify(deflateRaw);
const inflateRawAsync = promisify(inflateRaw);

const FEXTRA = 0x04;
/** OS byte "unknown" keeps members identical whatever host wrote them. */
const OS_UNKNOWN = 0xff;
/** A raw deflate stream holding nothing: one final fixed-Huffman block with only end-of-block. */
const EMPTY_DEFLATE = Buffer.from([0x03, 0x00]);
/** Largest payload one gzip extra subfield can carry (XLEN is 16 bits, minus the 4-byte subfield header). */
export const MAX_EXTRA_PAYLOAD = 0xffff - 4;

function header(flags: number, extraLen: number): Buffer {
  const h = Buffer.alloc(10 + (flags & FEXTRA ? 2 : 0));
  h[0] = 0x1f;
  h[1] = 0x8b;
  h[2] = 8; // deflate
  h[3] = flags;
  // mtime 0, xfl 0: deterministic
  h[9] = OS_UNKNOWN;
  if (flags & FEXTRA) h.writeUInt16LE(extraLen, 10);
  return h;
}

function trailer(crc: number, size: number): Buffer {
  const t = Buffer.alloc(8);
  t.writeUInt32LE(crc >>> 0, 0);
  t.writeUInt32LE(size >>> 0, 4);
  return t;
}

/**
 * Compress `data` as one complete, deterministic gzip member (mtime 0, OS
 * unknown, deflate level `level`). Runs on the libuv thread pool, so several
 * calls in flight use several cores.
 */
export async function gzipMember(data: Uint8Array, level = 6): Promise<Buffer> {
  const body = await deflateRawAsync(data, { level, memLevel: 8, strategy: constants.Z_DEFAULT_STRATEGY });
  return Buffer.concat([header(0, 0), body, trailer(crc32(data), data.length)]);
}

/**
 * A gzip member that decompresses to nothing and carries `payload` in its
 * header's extra field, as subfield (`si1`, `si2`). `payload` must be at most
 * `MAX_EXTRA_PAYLOAD` bytes.
 */
export function extraMember(si1: string, si2: string, payload: Uint8Array): Buffer {
  if (payload.length > MAX_EXTRA_PAYLOAD) throw new InvalidArgumentError(`gzip extra payload of ${payload.length} bytes is larger than ${MAX_EXTRA_PAYLOAD}`);
  const sub = Buffer.alloc(4);
  sub[0] = si1.charCodeAt(0);
  sub[1] = si2.charCodeAt(0);
  sub.writeUInt16LE(payload.length, 2);
  return Buffer.concat([header(FEXTRA, 4 + payload.length), sub, payload, EMPTY_DEFLATE, trailer(0, 0)]);
}

/** Size in bytes of `extraMember` output for a payload of `n` bytes. */
export function extraMemberSize(n: number): number {
  return 12 + 4 + n + EMPTY_DEFLATE.length + 8;
}

/**
 * Read consecutive empty gzip members that carry extra subfield (`si1`,
 * `si2`) from `bytes` and return their payloads concatenated. Every byte of
 * `bytes` must belong to such members. `blobOffset` is where `bytes` start in
 * the blob, for error messages.
 */
export function readExtraMembers(bytes: Uint8Array, si1: string, si2: string, where: { layer?: string; blobOffset: number }): Buffer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const parts: Buffer[] = [];
  let pos = 0;
  const fail = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_INDEX", msg, { layer: where.layer, blobOffset: where.blobOffset + pos });
  while (pos < buf.length) {
    if (buf.length - pos < 12 + 4 + 10) throw fail("truncated index member");
    if (buf[pos] !== 0x1f || buf[pos + 1] !== 0x8b || buf[pos + 2] !== 8 || buf[pos + 3] !== FEXTRA) throw fail("not an index gzip member");
    const xlen = buf.readUInt16LE(pos + 10);
    const sub = pos + 12;
    if (buf[sub] !== si1.charCodeAt(0) || buf[sub + 1] !== si2.charCodeAt(0)) throw fail("unexpected gzip extra subfield");
    const n = buf.readUInt16LE(sub + 2);
    if (n + 4 !== xlen) throw fail("gzip extra length mismatch");
    const end = sub + xlen;
    if (end + EMPTY_DEFLATE.length + 8 > buf.length) throw fail("truncated index member");
    if (!buf.subarray(end, end + 2).equals(EMPTY_DEFLATE) || buf.readUInt32LE(end + 2) !== 0 || buf.readUInt32LE(end + 6) !== 0) {
      throw fail("index member is not empty");
    }
    parts.push(buf.subarray(sub + 4, end));
    pos = end + 10;
  }
  return Buffer.concat(parts);
}

function checkMember(buf: Buffer, fail: (msg: string, cause?: unknown) => Error): void {
  if (buf.length < 18 || buf[0] !== 0x1f || buf[1] !== 0x8b || buf[2] !== 8 || buf[3] !== 0) throw fail("chunk is not a shoal gzip member");
}

function checkInflated(buf: Buffer, out: Buffer, expectedSize: number, fail: (msg: string) => Error): Buffer {
  if (out.length !== expectedSize) throw fail(`chunk inflates to ${out.length} bytes, expected ${expectedSize}`);
  if (crc32(out) !== buf.readUInt32LE(buf.length - 8) || buf.readUInt32LE(buf.length - 4) !== (expectedSize >>> 0)) {
    throw fail("chunk CRC or size mismatch");
  }
  return out;
}

function memberFail(where: { layer?: string; blobOffset?: number }) {
  return (msg: string, cause?: unknown) => new LayerFormatError("SHOAL_ERR_BAD_CHUNK", msg, { layer: where.layer, blobOffset: where.blobOffset }, { cause });
}

/**
 * Decompress one data member written by `gzipMember`. Throws a
 * `LayerFormatError` if it is not a single well-formed member of exactly
 * `expectedSize` uncompressed bytes with a matching CRC.
 */
export function gunzipMember(member: Uint8Array, expectedSize: number, where: { layer?: string; blobOffset?: number }): Buffer {
  const buf = Buffer.from(member.buffer, member.byteOffset, member.byteLength);
  const fail = memberFail(where);
  checkMember(buf, fail);
  let out: Buffer;
  try {
    out = inflateRawSync(buf.subarray(10, buf.length - 8), { maxOutputLength: Math.max(expectedSize, 1) });
  } catch (err) {
    throw fail("chunk does not inflate", err);
  }
  return checkInflated(buf, out, expectedSize, fail);
}

/** `gunzipMember` on the libuv thread pool, so several chunks inflate on several cores. */
export async function gunzipMemberAsync(member: Uint8Array, expectedSize: number, where: { layer?: string; blobOffset?: number }): Promise<Buffer> {
  const buf = Buffer.from(member.buffer, member.byteOffset, member.byteLength);
  const fail = memberFail(where);
  checkMember(buf, fail);
  let out: Buffer;
  try {
    const chunkSize = wholeOutputChunkSize(expectedSize);
    out = await inflateRawAsync(buf.subarray(10, buf.length - 8), { maxOutputLength: Math.max(expectedSize, 1), ...(chunkSize ? { chunkSize } : {}) });
  } catch (err) {
    throw fail("chunk does not inflate", err);
  }
  return checkInflated(buf, out, expectedSize, fail);
}
