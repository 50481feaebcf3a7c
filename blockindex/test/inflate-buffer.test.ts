// Inflating a chunk comes back to the main thread once, not once per 16 KiB of output.
import { createHook } from "node:async_hooks";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { prng } from "./helpers.ts";
import { writeTar } from "@shoal/testkit";
import { gunzipMemberAsync, inflateChunk, SeekableIndexBuilder, wholeOutputChunkSize } from "../src/index.ts";
import { gzipMember } from "../src/gzip-member.ts";

/** How many times zlib's thread-pool work called back into this thread while `work` ran, and its result. */
async function zlibCallbacks<T>(work: () => Promise<T>): Promise<{ callbacks: number; result: T }> {
  const zlib = new Set<number>();
  let callbacks = 0;
  const hook = createHook({
    init(id, type) {
      if (type === "ZLIB") zlib.add(id);
    },
    before(id) {
      if (zlib.has(id)) callbacks++;
    },
  });
  hook.enable();
  try {
    const result = await work();
    return { callbacks, result };
  } finally {
    hook.disable();
  }
}

/** 256 KiB that compress about 2:1 (text and random runs). */
function chunkData(seed: number): Buffer {
  const random = prng(seed);
  const parts: Buffer[] = [];
  for (let n = 0; n < 256 * 1024; n += 8192) parts.push(n % 16384 === 0 ? random(8192) : Buffer.from("a line of text\n".repeat(600)).subarray(0, 8192));
  return Buffer.concat(parts);
}

describe("inflate buffer", () => {
  it("a 256 KiB gzip member inflates in one pass of the thread pool", async () => {
    const data = chunkData(1);
    const member = await gzipMember(data);
    const { callbacks, result } = await zlibCallbacks(() => gunzipMemberAsync(member, data.length, {}));
    expect(Buffer.compare(result, data)).toBe(0);
    // zlib's default 16 KiB pieces would call back 17 times
    expect(callbacks).toBeLessThanOrEqual(2);
  });

  it("a span of an ordinary gzip stream inflates in one pass too", async () => {
    const tar = Buffer.from(writeTar([2, 3, 4].map((seed) => ({ path: `f/${seed}`, type: "file" as const, data: chunkData(seed) })), { defaultFormat: "ustar" }).tar);
    const blob = gzipSync(tar);
    const b = new SeekableIndexBuilder({ spacing: 256 * 1024 });
    b.push(blob);
    const { index } = b.end();
    const c = index.chunk(1);
    expect(c.uncompressedLength).toBeGreaterThan(64 * 1024);
    const { callbacks, result } = await zlibCallbacks(() => inflateChunk(c, blob.subarray(c.offset, c.offset + c.length)));
    expect(Buffer.compare(result, tar.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedLength))).toBe(0);
    expect(callbacks).toBeLessThanOrEqual(2);
  });

  it("sizes the buffer from the output, and leaves huge or bad sizes to zlib's default", () => {
    expect(wholeOutputChunkSize(262_144)).toBeGreaterThan(262_144);
    expect(wholeOutputChunkSize(0)).toBeGreaterThanOrEqual(64);
    expect(wholeOutputChunkSize(1 << 30)).toBeUndefined();
    expect(wholeOutputChunkSize(-1)).toBeUndefined();
    expect(wholeOutputChunkSize(Number.NaN)).toBeUndefined();
  });
});
