import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { chunkPaths } from "../src/index.ts";
import { expectedFiles, listChunkFiles, makeChunk, openStore, type TestChunk, suiteDir } from "./helpers.ts";

const { paths } = suiteDir();
const hexOf = (c: TestChunk): string => c.digest.slice("sha256:".length);

describe("ChunkStore: chunks stored compressed only", () => {
  it("stores one file, inflates on the first raw read (once for concurrent readers), then keeps both", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(3, 20_000);
      await s.store.putCompressed(c.digest, c.compressed, c.raw.length);
      expect(s.store.has(c.digest)).toBe(true);
      expect(s.store.stats().bytes).toBe(c.compressed.length);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([c.digest]).filter((f) => f.endsWith(".z")));
      expect(await s.store.readCompressed(c.digest)).toEqual(c.compressed);

      const reads = await Promise.all([s.store.readRaw(c.digest, 0, 100), s.store.readRaw(c.digest, 19_990, 100), s.store.readRaw(c.digest, 0, 1 << 20)]);
      expect(reads[0]).toEqual(c.raw.subarray(0, 100));
      expect(reads[1]).toEqual(c.raw.subarray(19_990));
      expect(reads[2]).toEqual(c.raw);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([c.digest]));
      expect(await readFile(chunkPaths(root, hexOf(c)).raw)).toEqual(Buffer.from(c.raw));
      expect(s.store.stats().bytes).toBe(c.compressed.length + c.raw.length);
      // a put of the same chunk with raw bytes is a no-op now
      await s.store.put(c.digest, c.compressed, c.raw);
      expect(s.store.stats().bytes).toBe(c.compressed.length + c.raw.length);
    } finally {
      await s.close();
    }
    // the raw file's record survives a reopen
    const again = await openStore(dbPath, { root });
    try {
      expect(again.store.stats().bytes).toBe(makeChunk(3, 20_000).compressed.length + 20_000);
    } finally {
      await again.close();
    }
  });

  it("inflates a compressed-only chunk on request (idle-time work), without a read", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(7, 12_000);
      expect(await s.store.inflateStored(c.digest)).toBe(false);
      await s.store.putCompressed(c.digest, c.compressed, c.raw.length);
      expect(s.store.hasRaw(c.digest)).toBe(false);
      expect(await s.store.inflateStored(c.digest)).toBe(true);
      expect(s.store.hasRaw(c.digest)).toBe(true);
      expect(await readFile(chunkPaths(root, hexOf(c)).raw)).toEqual(Buffer.from(c.raw));
      expect(await s.store.inflateStored(c.digest)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it("drops a compressed-only chunk whose file no longer inflates, and reads it as absent", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(4, 10_000);
      await s.store.putCompressed(c.digest, c.compressed, c.raw.length);
      const z = chunkPaths(root, hexOf(c)).z;
      await writeFile(z, Buffer.alloc(c.compressed.length, 0x55)); // same size, not gzip
      expect(await s.store.readRaw(c.digest, 0, 10)).toBeUndefined();
      expect(s.store.has(c.digest)).toBe(false);
      expect(await listChunkFiles(root)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("at open, adopts a raw file left by a crash before its record was updated, and deletes a partial one", async () => {
    const { root, dbPath } = paths();
    const [whole, partial] = [makeChunk(5, 8000), makeChunk(6, 8000)];
    let s = await openStore(dbPath, { root });
    for (const c of [whole, partial]) await s.store.putCompressed(c.digest, c.compressed, c.raw.length);
    await s.close();
    await writeFile(chunkPaths(root, hexOf(whole)).raw, whole.raw);
    await writeFile(chunkPaths(root, hexOf(partial)).raw, partial.raw.subarray(0, 100));
    s = await openStore(dbPath, { root });
    try {
      expect(s.store.stats().bytes).toBe(whole.compressed.length + whole.raw.length + partial.compressed.length);
      expect(await listChunkFiles(root)).toEqual([...expectedFiles([whole.digest]), ...expectedFiles([partial.digest]).filter((f) => f.endsWith(".z"))].sort());
      expect(await s.store.readRaw(partial.digest, 0, 1 << 20)).toEqual(partial.raw);
      expect(await s.store.readRaw(whole.digest, 0, 1 << 20)).toEqual(whole.raw);
    } finally {
      await s.close();
    }
  });

  it("evicts compressed-only chunks by the bytes they take", async () => {
    const { root, dbPath } = paths();
    const chunks = Array.from({ length: 4 }, (_, i) => makeChunk(10 + i, 30_000));
    const cap = chunks.slice(0, 3).reduce((a, c) => a + c.compressed.length, 0);
    const s = await openStore(dbPath, { root, capacityBytes: cap });
    try {
      for (const c of chunks.slice(0, 3)) await s.store.putCompressed(c.digest, c.compressed, c.raw.length);
      expect(s.store.stats().chunks).toBe(3);
      await s.store.putCompressed(chunks[3]!.digest, chunks[3]!.compressed, chunks[3]!.raw.length);
      expect(s.store.has(chunks[0]!.digest)).toBe(false);
      expect(s.store.stats().bytes).toBeLessThanOrEqual(cap);
    } finally {
      await s.close();
    }
  });
});
