// The inflate scanner against Node's zlib, and inflating again from the checkpoints it reports.
import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { InflateScanner, type BlockBoundary } from "../src/seekable/inflate-scanner.ts";
import { inflateSpanAsync } from "../src/seekable/span-reader.ts";

/** `n` bytes that look random, the same for the same seed (a failure here must happen again). */
function noise(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  for (let off = 0, i = 0; off < n; i++) off += createHash("sha256").update(`${seed}:${i}`).digest().copy(out, off);
  return out;
}

/** Tar-like data: runs of text, zeros and random-looking bytes, so blocks of every kind appear. */
function sample(bytes: number, seed = 1): Buffer {
  const parts: Buffer[] = [];
  let n = 0;
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) >>> 0);
  while (n < bytes) {
    const kind = next() % 3;
    const len = 1 + (next() % 20000);
    const p = kind === 0 ? Buffer.from(`line ${next() % 1000} of a text file with words\n`.repeat(Math.ceil(len / 40))).subarray(0, len)
      : kind === 1 ? Buffer.alloc(len) : noise(len, next());
    parts.push(p);
    n += p.length;
  }
  return Buffer.concat(parts).subarray(0, bytes);
}

function scan(gz: Uint8Array, piece: number, every = 0): { out: Buffer; checkpoints: Array<BlockBoundary & { window: Uint8Array }>; stored: number[] } {
  const chunks: Buffer[] = [];
  const checkpoints: Array<BlockBoundary & { window: Uint8Array }> = [];
  const stored: number[] = [];
  let last = -Infinity;
  const s = new InflateScanner({
    onData: (d) => chunks.push(Buffer.from(d)),
    onBoundary: (b) => every > 0 && b.out - last >= every,
    onCheckpoint: (b, window) => {
      last = b.out;
      checkpoints.push({ ...b, window });
    },
    onStoredBlock: (b) => stored.push(b.bit),
  });
  for (let i = 0; i < gz.length; i += piece) s.push(gz.subarray(i, i + piece));
  s.end();
  return { out: Buffer.concat(chunks), checkpoints, stored };
}

describe("InflateScanner", () => {
  it.each([0, 1, 6, 9])("inflates what zlib compressed at level %i, pushed in pieces of any size", (level) => {
    const data = sample(3 << 20, level + 1);
    const gz = gzipSync(data, { level });
    for (const piece of [gz.length, 65_536, 7_777, 1_000]) expect(scan(gz, piece).out.equals(data)).toBe(true);
  });

  it("inflates a stored block that starts just after a push, whatever whole bytes the bit buffer held then", () => {
    // pieces just over the look-ahead: the decoder suspends with up to 30 bits read ahead; a stored
    // block right after must take its header from bytes of the earlier piece
    const data = sample(3 << 20, 7);
    const gz = gzipSync(data, { level: 6 });
    let stored = 0;
    for (let piece = 1000; piece < 1200; piece++) {
      const r = scan(gz, piece);
      stored = r.stored.length;
      expect(r.out.equals(data)).toBe(true);
    }
    expect(stored).toBeGreaterThan(0);
  });

  it("inflates a small stream pushed a byte at a time, and concatenated members", () => {
    const a = Buffer.from("hello, seekable gzip\n".repeat(50));
    const b = sample(100_000, 7);
    expect(scan(gzipSync(a), 1).out.equals(a)).toBe(true);
    expect(scan(Buffer.concat([gzipSync(a), gzipSync(b), gzipSync(Buffer.alloc(0))]), 4096).out.equals(Buffer.concat([a, b]))).toBe(true);
  });

  it("reports checkpoints from which a raw inflate with the window yields exactly the bytes that follow", async () => {
    const data = sample(4 << 20, 3);
    const gz = gzipSync(data, { level: 6 });
    const { checkpoints, stored } = scan(gz, 100_000, 256 * 1024);
    expect(checkpoints.length).toBeGreaterThan(8);
    expect(checkpoints.some((c) => c.bit % 8 !== 0)).toBe(true); // real block boundaries are mostly mid-byte
    let exact = 0;
    for (const [i, c] of checkpoints.entries()) {
      const end = checkpoints[i + 1]?.out ?? data.length;
      const endBit = checkpoints[i + 1]?.bit ?? (gz.length - 8) * 8;
      expect(Buffer.from(c.window).equals(data.subarray(Math.max(0, c.out - 32768), c.out))).toBe(true);
      const bytes = gz.subarray(Math.floor(c.bit / 8), Math.ceil(endBit / 8));
      const expected = data.subarray(c.out, end);
      // the known limit: a span starting mid-byte with a stored block inside does not inflate by shifting
      const shiftBreaks = c.bit % 8 !== 0 && stored.some((b) => b > c.bit && b < endBit);
      if (!shiftBreaks) {
        expect((await inflateSpanAsync({ bit: c.bit % 8, window: c.window, skip: 0, tail: 0 }, bytes, end - c.out)).equals(expected)).toBe(true);
        exact++;
      }
    }
    expect(exact).toBeGreaterThan(0);
  });

  it("refuses corrupt and truncated streams with SHOAL_ERR_GZIP_CORRUPT", () => {
    const data = sample(1 << 20, 5);
    const gz = gzipSync(data);
    const flipped = Buffer.from(gz);
    flipped[Math.floor(gz.length / 2)]! ^= 0x55;
    for (const bad of [flipped, gz.subarray(0, gz.length - 100), gz.subarray(0, gz.length - 3), Buffer.from("not gzip at all")]) {
      expect(() => scan(bad, 65_536)).toThrow(expect.objectContaining({ code: "SHOAL_ERR_GZIP_CORRUPT" }));
    }
  });

  it("a wrong window does not inflate to the original bytes", async () => {
    // text only, so that every span reaches back into its window
    const data = Buffer.from(Array.from({ length: 50_000 }, (_, i) => `line ${(i * 7919) % 100_000} of a text file with words\n`).join(""));
    const gz = gzipSync(data);
    const { checkpoints } = scan(gz, 65_536, 512 * 1024);
    const c = checkpoints.find((k) => k.out > 0)!;
    const n = checkpoints[checkpoints.indexOf(c) + 1];
    const bytes = gz.subarray(Math.floor(c.bit / 8), Math.ceil((n?.bit ?? (gz.length - 8) * 8) / 8));
    const len = (n?.out ?? data.length) - c.out;
    const forged = Buffer.alloc(c.window.length, 0x41);
    let got: Buffer | undefined;
    try {
      got = await inflateSpanAsync({ bit: c.bit % 8, window: forged, skip: 0, tail: 0 }, bytes, len);
    } catch {
      got = undefined;
    }
    expect(got?.equals(data.subarray(c.out, c.out + len)) ?? false).toBe(false);
  });
});
