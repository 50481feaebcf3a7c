import { ShoalError } from "@shoal/base";
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DiskFullError } from "../src/index.ts";
import { countingMetrics, expectedFiles, listChunkFiles, makeRandomChunk, openStore, removeDir, tempDir, type TestChunk } from "./helpers.ts";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

let dir: string;
let mnt: string;
let mounted = false;
beforeAll(async () => {
  dir = await tempDir("shoal-enospc-");
  mnt = path.join(dir, "tmpfs");
  await mkdir(mnt);
  if (isRoot) {
    await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]);
    mounted = true;
  }
});
afterAll(async () => {
  try {
    if (mounted) await run("umount", [mnt]);
  } finally {
    await removeDir(dir);
  }
});

describe.skipIf(!isRoot)("ChunkStore on a full disk (2 MiB tmpfs)", () => {
  it("fails with SHOAL_ERR_DISK_FULL, evicts unpinned chunks to make room, and stays consistent", async () => {
    const root = path.join(mnt, "store");
    const dbPath = path.join(dir, "db"); // LevelDB on the big disk: only chunk files run out of space
    const metrics = countingMetrics();
    // ~600 KB per chunk (300 KB raw + 300 KB stored-gzip): three fit in 2 MiB, four do not.
    const [a, b, c, d] = [0, 1, 2, 3].map((i) => makeRandomChunk(i, 300_000)) as TestChunk[];
    let s = await openStore(dbPath, { root }, { metrics });
    try {
      for (const x of [a!, b!, c!]) await s.store.put(x.digest, x.compressed, x.raw);
      s.store.pin("mount", [a!.digest, b!.digest, c!.digest]);

      // Everything pinned: nothing to evict, so the put fails cleanly.
      const err = await s.store.put(d!.digest, d!.compressed, d!.raw).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DiskFullError);
      expect(err).toBeInstanceOf(ShoalError);
      expect((err as DiskFullError).code).toBe("SHOAL_ERR_DISK_FULL");
      expect(s.store.has(d!.digest)).toBe(false);
      expect(s.store.stats().chunks).toBe(3);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([a!.digest, b!.digest, c!.digest]));
      expect(metrics.evictions.value).toBe(0);

      // Unpinned: the put evicts the least recently used chunk (b; a was just read) and succeeds.
      s.store.unpin("mount");
      expect(await s.store.readRaw(a!.digest, 0, 10)).toEqual(a!.raw.subarray(0, 10));
      await s.store.put(d!.digest, d!.compressed, d!.raw);
      expect([a, b, c, d].map((x) => s.store.has(x!.digest))).toEqual([true, false, true, true]);
      expect(metrics.evictions.value).toBe(1);
      expect(await s.store.readRaw(d!.digest, 0, 1 << 20)).toEqual(d!.raw);

      // A chunk bigger than the whole file system: no eviction can help, so none happens.
      const huge = makeRandomChunk(9, 1_200_000);
      await expect(s.store.put(huge.digest, huge.compressed, huge.raw)).rejects.toMatchObject({ code: "SHOAL_ERR_DISK_FULL" });
      expect(metrics.evictions.value).toBe(1);
      expect(s.store.digests().sort()).toEqual([a!.digest, c!.digest, d!.digest].sort());

      // Still usable.
      const small = makeRandomChunk(10, 1000);
      await s.store.put(small.digest, small.compressed, small.raw);
      expect(await s.store.readCompressed(small.digest)).toEqual(small.compressed);
      expect(await listChunkFiles(root)).toEqual(expectedFiles([a!.digest, c!.digest, d!.digest, small.digest]));
    } finally {
      await s.close();
    }

    s = await openStore(dbPath, { root });
    try {
      const present = s.store.digests();
      expect(present.sort()).toEqual([a!.digest, c!.digest, d!.digest, makeRandomChunk(10, 1000).digest].sort());
      for (const x of [a!, c!, d!]) expect(await s.store.readCompressed(x.digest)).toEqual(x.compressed);
      expect(await listChunkFiles(root)).toEqual(expectedFiles(present));
    } finally {
      await s.close();
    }
  });
});
