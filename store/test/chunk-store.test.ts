import { DigestMismatchError, InvalidArgumentError } from "@shoal/base";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { ChunkStore, StoreClosedError, chunkPaths, type ChunkDb } from "../src/index.ts";
import { chunkBytes, countingMetrics, expectedFiles, listChunkFiles, makeChunk, openStore, suiteDir } from "./helpers.ts";

const { paths } = suiteDir();

/** A db wrapper that counts `batch` calls (each one db write). */
function batchCounter(): { counting: (db: ChunkDb) => ChunkDb; batches: () => number } {
  let n = 0;
  return {
    counting: (db) => ({
      batch: (ops, opts) => {
        n++;
        return db.batch(ops, opts);
      },
      iterator: (opts) => db.iterator(opts),
    }),
    batches: () => n,
  };
}

describe("ChunkStore basics", () => {
  it("round-trips raw and compressed bytes, with partial reads and reads past the end", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(1, 5000);
      const other = makeChunk(2);
      expect(s.store.has(c.digest)).toBe(false);
      expect(await s.store.readRaw(c.digest, 0, 10)).toBeUndefined();
      expect(await s.store.readCompressed(c.digest)).toBeUndefined();

      await s.store.put(c.digest, c.compressed, c.raw);
      expect(s.store.has(c.digest)).toBe(true);
      expect(s.store.has(other.digest)).toBe(false);
      expect(await s.store.readRaw(c.digest, 0, c.raw.length)).toEqual(c.raw);
      expect(await s.store.readCompressed(c.digest)).toEqual(c.compressed);
      expect(await s.store.readRaw(c.digest, 100, 250)).toEqual(c.raw.subarray(100, 350));
      expect(await s.store.readRaw(c.digest, 4990, 100)).toEqual(c.raw.subarray(4990));
      expect(await s.store.readRaw(c.digest, 0, 1 << 20)).toEqual(c.raw);
      expect((await s.store.readRaw(c.digest, 5000, 10))?.length).toBe(0);
      expect((await s.store.readRaw(c.digest, 9000, 10))?.length).toBe(0);
      expect((await s.store.readRaw(c.digest, 10, 0))?.length).toBe(0);
      await expect(s.store.readRaw(c.digest, -1, 10)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.store.readRaw(c.digest, 0, 1.5)).rejects.toBeInstanceOf(InvalidArgumentError);

      // The files are where the layout says, byte for byte, and nothing else is there.
      const p = chunkPaths(root, c.digest.slice(7));
      expect(await readFile(p.z)).toEqual(c.compressed);
      expect(await readFile(p.raw)).toEqual(c.raw);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([c.digest]));
      expect(s.store.stats()).toEqual({ chunks: 1, bytes: chunkBytes(c), capacityBytes: 10 * 1024 ** 3 });
    } finally {
      await s.close();
    }
  });

  it("rejects bad digests and bytes that do not match the digest, storing nothing", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(3);
      const d = makeChunk(4);
      await expect(s.store.put("sha512:abc", c.compressed, c.raw)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(s.store.put(c.digest.toUpperCase(), c.compressed, c.raw)).rejects.toBeInstanceOf(InvalidArgumentError);
      const err = await s.store.put(c.digest, d.compressed, d.raw).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as DigestMismatchError).code).toBe("SHOAL_ERR_DIGEST_MISMATCH");
      expect(s.store.has(c.digest)).toBe(false);
      expect(await listChunkFiles(root)).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("takes the caller's word with verified: the bytes are not hashed again", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    try {
      const c = makeChunk(7);
      const other = makeChunk(8);
      // only a caller that really checked may say so: the store stores what it is given
      await s.store.putCompressed(c.digest, other.compressed, other.raw.length, { verified: true });
      expect(await s.store.readCompressed(c.digest)).toEqual(other.compressed);
      await expect(s.store.put(other.digest, c.compressed, c.raw)).rejects.toBeInstanceOf(DigestMismatchError);
    } finally {
      await s.close();
    }
  });

  it("is idempotent and counts metrics", async () => {
    const { root, dbPath } = paths();
    const metrics = countingMetrics();
    const s = await openStore(dbPath, { root }, { metrics });
    try {
      const c = makeChunk(5);
      await s.store.put(c.digest, c.compressed, c.raw);
      await s.store.put(c.digest, c.compressed, c.raw);
      expect(s.store.stats()).toMatchObject({ chunks: 1, bytes: chunkBytes(c) });
      expect(metrics.storedBytes.value).toBe(chunkBytes(c));
      await s.store.readRaw(c.digest, 0, 1);
      await s.store.readCompressed(c.digest);
      await s.store.readRaw(makeChunk(6).digest, 0, 1);
      expect(metrics.hits.value).toBe(2);
      expect(metrics.misses.value).toBe(1);
    } finally {
      await s.close();
    }
  });

  it("joins concurrent puts of one digest", async () => {
    const { root, dbPath } = paths();
    const metrics = countingMetrics();
    const s = await openStore(dbPath, { root }, { metrics });
    try {
      const c = makeChunk(7, 300_000);
      await Promise.all(Array.from({ length: 8 }, () => s.store.put(c.digest, c.compressed, c.raw)));
      expect(metrics.storedBytes.value).toBe(chunkBytes(c));
      expect(s.store.stats()).toMatchObject({ chunks: 1, bytes: chunkBytes(c) });
      expect(await s.store.readRaw(c.digest, 0, c.raw.length)).toEqual(c.raw);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([c.digest]));

      // A waiting put does not inherit the first one's abort: it stores the chunk itself.
      const d = makeChunk(8, 300_000);
      const ac = new AbortController();
      const first = s.store.put(d.digest, d.compressed, d.raw, { signal: ac.signal });
      const second = s.store.put(d.digest, d.compressed, d.raw);
      ac.abort();
      await expect(first).rejects.toMatchObject({ name: "AbortError" });
      await second;
      expect(s.store.has(d.digest)).toBe(true);
      expect(await s.store.readCompressed(d.digest)).toEqual(d.compressed);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([c.digest, d.digest]));
      expect(metrics.storedBytes.value).toBe(chunkBytes(c) + chunkBytes(d));
    } finally {
      await s.close();
    }
  });

  it("refuses use after close", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    const c = makeChunk(9);
    await s.close();
    await s.close();
    await expect(s.store.evict()).rejects.toBeInstanceOf(StoreClosedError);
    await expect(s.store.put(c.digest, c.compressed, c.raw)).rejects.toBeInstanceOf(StoreClosedError);
    await expect(s.store.readRaw(c.digest, 0, 1)).rejects.toMatchObject({ code: "SHOAL_ERR_STORE_CLOSED" });
  });

  it("validates init", async () => {
    const { root, dbPath } = paths();
    const s = await openStore(dbPath, { root });
    const db = s.db.sublevel("x");
    try {
      await expect(ChunkStore.open({ db }, { root, capacityBytes: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(ChunkStore.open({ db }, { root: "" })).rejects.toBeInstanceOf(InvalidArgumentError);
    } finally {
      await s.close();
    }
  });
});

describe("ChunkStore persistence", () => {
  it("keeps chunks and LRU order across close and reopen", async () => {
    const { root, dbPath } = paths();
    const chunks = Array.from({ length: 6 }, (_, i) => makeChunk(100 + i));
    let s = await openStore(dbPath, { root });
    for (const c of chunks) await s.store.put(c.digest, c.compressed, c.raw);
    await s.store.readRaw(chunks[2]!.digest, 0, 10);
    await s.store.readCompressed(chunks[0]!.digest);
    const order = s.store.digests();
    expect(order.slice(-2)).toEqual([chunks[2]!.digest, chunks[0]!.digest]);
    const stats = s.store.stats();
    await s.close();

    s = await openStore(dbPath, { root });
    try {
      expect(s.store.stats()).toEqual(stats);
      expect(s.store.digests()).toEqual(order);
      for (const c of chunks) {
        expect(await s.store.readRaw(c.digest, 0, c.raw.length)).toEqual(c.raw);
        expect(await s.store.readCompressed(c.digest)).toEqual(c.compressed);
      }
    } finally {
      await s.close();
    }
  });

  it("persists last-access times in batches, not one db write per read", async () => {
    const { root, dbPath } = paths();
    const { counting, batches } = batchCounter();
    const s = await openStore(dbPath, { root, accessFlushMs: 60_000 }, { wrapDb: counting });
    const chunks = Array.from({ length: 5 }, (_, i) => makeChunk(200 + i));
    for (const c of chunks) await s.store.put(c.digest, c.compressed, c.raw);
    const afterPuts = batches();
    expect(afterPuts).toBe(5);
    for (let i = 0; i < 100; i++) await s.store.readRaw(chunks[i % 5]!.digest, 0, 1);
    expect(batches()).toBe(afterPuts);
    await s.close();
    expect(batches()).toBe(afterPuts + 1);
  });

  it("flushes access times on its interval", async () => {
    const { root, dbPath } = paths();
    const { counting, batches } = batchCounter();
    const s = await openStore(dbPath, { root, accessFlushMs: 20 }, { wrapDb: counting });
    try {
      const c = makeChunk(300);
      await s.store.put(c.digest, c.compressed, c.raw);
      const before = batches();
      await s.store.readRaw(c.digest, 0, 1);
      await new Promise((r) => setTimeout(r, 200));
      expect(batches()).toBe(before + 1);
    } finally {
      await s.close();
    }
  });
});
