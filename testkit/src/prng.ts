/**
 * Deterministic pseudo-random data for fixtures. Not cryptographic: the only
 * contract is that the same seed always yields the same bytes on every
 * platform and Node version.
 */

/**
 * mulberry32: returns a function producing uniformly distributed unsigned
 * 32-bit integers from a 32-bit seed.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * `length` incompressible bytes derived from `seed` (little-endian words of
 * mulberry32). `length` 0 yields an empty array.
 */
export function randomBytes(seed: number, length: number): Uint8Array {
  const next = mulberry32(seed);
  const words = new Uint32Array(Math.ceil(length / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  // Uint32Array is host-endian; copy through DataView to pin little-endian.
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  const whole = Math.floor(length / 4);
  for (let i = 0; i < whole; i++) view.setUint32(i * 4, words[i] ?? 0, true);
  for (let i = whole * 4; i < length; i++) out[i] = ((words[whole] ?? 0) >>> ((i - whole * 4) * 8)) & 0xff;
  return out;
}

/**
 * `length` bytes of compressible printable ASCII text derived from `seed`
 * (lines of pseudo-words), for files that should gzip well.
 */
export function textBytes(seed: number, length: number): Uint8Array {
  const next = mulberry32(seed);
  const words = ["shoal", "chunk", "layer", "gzip", "index", "peer", "lazy", "tar", "blob", "fuse"];
  const out = new Uint8Array(length);
  let i = 0;
  while (i < length) {
    const r = next();
    const w = (r % 7 === 0 ? "\n" : " ") + (words[r % words.length] ?? "x");
    for (let j = 0; j < w.length && i < length; j++) out[i++] = w.charCodeAt(j);
  }
  return out;
}
