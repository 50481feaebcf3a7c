import { BadRequestError } from "@shoal/base";
/**
 * Which chunks of a layer a peer holds, as agents announce them to the
 * tracker: bit `i` (byte `i >> 3`, least significant bit first) is set when
 * chunk `i` is held and verified. Carried in JSON as base64.
 */

/** Largest bitmap accepted, bytes (2^20 chunks: 256 GiB of layer at 256 KiB chunks). */
export const MAX_BITMAP_BYTES = 128 * 1024;

/** The base64 bitmap of `count` chunks where `has(i)` says whether chunk `i` is held. */
export function encodeChunkBitmap(count: number, has: (i: number) => boolean): string {
  return Buffer.from(bitsOf(count, has).bits).toString("base64");
}

/**
 * What is held of a layer of `count` chunks (`has` asked once per chunk):
 * how many chunks, and their base64 bitmap unless none or all are held (an
 * announce then omits the layer, or names it without a bitmap).
 */
export function chunkHolding(count: number, has: (i: number) => boolean): { held: number; bitmap?: string } {
  const { bits, held } = bitsOf(count, has);
  return held === 0 || held === count ? { held } : { held, bitmap: Buffer.from(bits).toString("base64") };
}

function bitsOf(count: number, has: (i: number) => boolean): { bits: Uint8Array; held: number } {
  const bits = new Uint8Array(Math.ceil(count / 8));
  let held = 0;
  for (let i = 0; i < count; i++) {
    if (!has(i)) continue;
    bits[i >> 3]! |= 1 << (i & 7);
    held++;
  }
  return { bits, held };
}

/** Bits of a base64 bitmap (untrusted input): throws `BadRequestError` when it is not base64 or too large. */
export function decodeChunkBitmap(text: string): Uint8Array {
  if (typeof text !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new BadRequestError("chunk bitmap must be base64");
  }
  if ((text.length / 4) * 3 > MAX_BITMAP_BYTES + 2) throw new BadRequestError(`chunk bitmap larger than ${MAX_BITMAP_BYTES} bytes`);
  return new Uint8Array(Buffer.from(text, "base64"));
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** Each base64 character's 6 bits (0 for `=` and anything else). */
const SEXTET = new Uint8Array(128);
for (let k = 0; k < 64; k++) SEXTET[BASE64.charCodeAt(k)] = k;
/** Set bits in each 6-bit value. */
const SEXTET_BITS = Uint8Array.from({ length: 64 }, (_, v) => bitmapCount(Uint8Array.of(v)));

/**
 * True when chunk `i` is set in `text`, a base64 bitmap as
 * `decodeChunkBitmap` accepts it (false beyond its end), read in place:
 * the tracker keeps bitmaps as announced and decodes none to answer.
 */
export function base64BitmapHas(text: string, i: number): boolean {
  if (i < 0) return false;
  const byte = i >> 3;
  const padding = text.endsWith("==") ? 2 : text.endsWith("=") ? 1 : 0;
  if (byte >= (text.length / 4) * 3 - padding) return false;
  const at = Math.floor(byte / 3) * 4;
  const group = (SEXTET[text.charCodeAt(at)]! << 18) | (SEXTET[text.charCodeAt(at + 1)]! << 12) | (SEXTET[text.charCodeAt(at + 2)]! << 6) | SEXTET[text.charCodeAt(at + 3)]!;
  return ((group >> (16 - 8 * (byte % 3))) & (1 << (i & 7))) !== 0;
}

/** How many chunks `text`, a base64 bitmap as `decodeChunkBitmap` accepts it, marks as held, counted in place. */
export function base64BitmapCount(text: string): number {
  let n = 0;
  for (let k = 0; k < text.length; k++) n += SEXTET_BITS[SEXTET[text.charCodeAt(k) & 127]!]!;
  return n;
}

/** True when chunk `i` is set in `bits` (false beyond its end). */
export function bitmapHas(bits: Uint8Array, i: number): boolean {
  return i >= 0 && (i >> 3) < bits.length && (bits[i >> 3]! & (1 << (i & 7))) !== 0;
}

/** How many chunks `bits` marks as held. */
export function bitmapCount(bits: Uint8Array): number {
  let n = 0;
  for (let b of bits) {
    for (; b; b &= b - 1) n++;
  }
  return n;
}
