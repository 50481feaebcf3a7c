import { describe, expect, it } from "vitest";
import { chunkBytes, countingMetrics, expectedFiles, listChunkFiles, makeRandomChunk, openStore, type TestChunk, suiteDir } from "./helpers.ts";

const { paths } = suiteDir();

/** Equal-sized chunks, so capacity can be given in chunks. */
const chunk = (i: number): TestChunk => makeRandomChunk(i, 8192);
const SIZE = chunkBytes(chunk(0));

describe("ChunkStore eviction", () => {
  it("evicts least-recently-used chunks after a put and stays within capacity", async () => {
    const { root, dbPath } = paths();
    const metrics = countingMetrics();
    const s = await openStore(dbPath, { root, capacityBytes: 3 * SIZE }, { metrics });
    try {
      const [a, b, c, d, e] = [0, 1, 2, 3, 4].map(chunk) as [TestChunk, TestChunk, TestChunk, TestChunk, TestChunk];
      for (const x of [a, b, c]) await s.store.put(x.digest, x.compressed, x.raw);
      expect(s.store.stats()).toMatchObject({ chunks: 3, bytes: 3 * SIZE });
      await s.store.readRaw(a.digest, 0, 1); // a is now the most recent
      await s.store.put(d.digest, d.compressed, d.raw);
      expect([a, b, c, d].map((x) => s.store.has(x.digest))).toEqual([true, false, true, true]);
      expect(await s.store.readRaw(b.digest, 0, 1)).toBeUndefined();
      await s.store.put(a.digest, a.compressed, a.raw); // idempotent put counts as use
      await s.store.put(e.digest, e.compressed, e.raw);
      expect([a, c, d, e].map((x) => s.store.has(x.digest))).toEqual([true, false, true, true]);
      expect(s.store.stats().bytes).toBeLessThanOrEqual(3 * SIZE);
      expect(metrics.evictions.value).toBe(2);
      expect(metrics.evictedBytes.value).toBe(2 * SIZE);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([a.digest, d.digest, e.digest]));
    } finally {
      await s.close();
    }
  });

  it("never evicts pinned chunks; unpin makes them evictable", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root, capacityBytes: 2 * SIZE });
    try {
      const [a, b, c, d] = [10, 11, 12, 13].map(chunk) as [TestChunk, TestChunk, TestChunk, TestChunk];
      s.store.pin("mount-1", [a.digest, b.digest]);
      s.store.pin("mount-2", [a.digest]);
      for (const x of [a, b, c]) await s.store.put(x.digest, x.compressed, x.raw);
      // a, b pinned; c is the chunk just stored: nothing can go, so the store runs over.
      expect(s.store.stats()).toMatchObject({ chunks: 3, bytes: 3 * SIZE });
      await s.store.put(d.digest, d.compressed, d.raw);
      expect([a, b, c, d].map((x) => s.store.has(x.digest))).toEqual([true, true, false, true]);
      expect(await s.store.evict()).toBe(SIZE); // d is not pinned and over capacity
      expect([a, b, d].map((x) => s.store.has(x.digest))).toEqual([true, true, false]);
      expect(await s.store.evict()).toBe(0);

      s.store.unpin("mount-1"); // a still pinned by mount-2
      await s.store.readRaw(b.digest, 0, 1);
      const e = chunk(14);
      await s.store.put(e.digest, e.compressed, e.raw);
      // over by one: the LRU unpinned chunk is b (a is pinned, e just stored)
      expect([a, b, e].map((x) => s.store.has(x.digest))).toEqual([true, false, true]);
      s.store.unpin("mount-2");
      s.store.unpin("nobody");
      expect(await s.store.evict()).toBe(0);
      const f = chunk(15);
      await s.store.put(f.digest, f.compressed, f.raw);
      expect([a, e, f].map((x) => s.store.has(x.digest))).toEqual([false, true, true]);
      expect(s.store.stats().bytes).toBe(2 * SIZE);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([e.digest, f.digest]));
    } finally {
      await s.close();
    }
  });

  it("keeps LRU order across a restart", async () => {
    const { root, dbPath } = paths();
    const [a, b, c, d] = [20, 21, 22, 23].map(chunk) as [TestChunk, TestChunk, TestChunk, TestChunk];
    let s = await openStore(dbPath, { root, capacityBytes: 3 * SIZE });
    for (const x of [a, b, c]) await s.store.put(x.digest, x.compressed, x.raw);
    await s.store.readCompressed(a.digest);
    await s.close();
    s = await openStore(dbPath, { root, capacityBytes: 3 * SIZE });
    try {
      await s.store.put(d.digest, d.compressed, d.raw);
      expect([a, b, c, d].map((x) => s.store.has(x.digest))).toEqual([true, false, true, true]);
    } finally {
      await s.close();
    }
  });

  it("does not evict at open, even when the capacity shrank", async () => {
    const { root, dbPath } = paths();
    let s = await openStore(dbPath, { root });
    const chunks = [30, 31, 32].map(chunk);
    for (const x of chunks) await s.store.put(x.digest, x.compressed, x.raw);
    await s.close();
    s = await openStore(dbPath, { root, capacityBytes: SIZE });
    try {
      expect(s.store.stats()).toMatchObject({ chunks: 3, capacityBytes: SIZE });
      expect(await s.store.evict()).toBe(2 * SIZE);
      expect(s.store.digests()).toEqual([chunks[2]!.digest]);
    } finally {
      await s.close();
    }
  });

  it("serves reads racing with eviction either the right bytes or undefined", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root, capacityBytes: 4 * SIZE, maxOpenFiles: 3 });
    try {
      const chunks = Array.from({ length: 40 }, (_, i) => chunk(100 + i));
      const reads: Promise<void>[] = [];
      for (const c of chunks) {
        await s.store.put(c.digest, c.compressed, c.raw);
        for (const back of chunks.slice(Math.max(0, c.index - 105), c.index - 99)) {
          reads.push(
            s.store.readRaw(back.digest, 100, 5000).then((got) => {
              if (got !== undefined) expect(got).toEqual(back.raw.subarray(100, 5100));
            }),
          );
        }
      }
      await Promise.all(reads);
      expect(s.store.stats().chunks).toBe(4);
    } finally {
      await s.close();
    }
  });
});
