import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkPaths } from "../src/index.ts";
import { expectedFiles, listChunkFiles, makeChunk, openStore, removeDir, tempDir, type TestChunk } from "./helpers.ts";

let dir: string;
beforeAll(async () => {
  dir = await tempDir();
});
afterAll(async () => {
  await removeDir(dir);
});

const hexOf = (c: TestChunk): string => c.digest.slice("sha256:".length);

async function writePair(root: string, c: TestChunk, z: Uint8Array | undefined, raw: Uint8Array | undefined): Promise<void> {
  const p = chunkPaths(root, hexOf(c));
  await mkdir(p.dir, { recursive: true });
  if (z) await writeFile(p.z, z);
  if (raw) await writeFile(p.raw, raw);
}

describe("ChunkStore recovery at open", () => {
  it("reconciles files and records left by crashes", async () => {
    const root = path.join(dir, "root");
    const dbPath = path.join(dir, "db");
    const [kept, lostRaw, truncated, , adoptMe, corruptZ, onlyZ, onlyRaw] = Array.from({ length: 8 }, (_, i) => makeChunk(i + 1)) as TestChunk[];
    let s = await openStore(dbPath, { root });
    for (const c of [kept!, lostRaw!, truncated!]) await s.store.put(c.digest, c.compressed, c.raw);
    await s.db.sublevel("chunks").put("chunk!garbage", "not json {");
    await s.db.sublevel("chunks").put("chunk!sha256:zz", JSON.stringify({ compressedSize: 1, rawSize: 1, lastAccess: 0, seq: 1 }));
    await s.close();

    // Damage: a record's raw file vanished, another's is truncated.
    await rm(chunkPaths(root, hexOf(lostRaw!)).raw);
    await writeFile(chunkPaths(root, hexOf(truncated!)).raw, truncated!.raw.subarray(0, 10));
    // Crash leftovers: temp files, a verified orphan pair, a verified compressed-only orphan, orphans that cannot be trusted, junk.
    await writePair(root, adoptMe!, adoptMe!.compressed, adoptMe!.raw);
    await writePair(root, corruptZ!, Buffer.from(corruptZ!.compressed).fill(7, 20, 30), corruptZ!.raw);
    await writePair(root, onlyZ!, onlyZ!.compressed, undefined);
    await writePair(root, onlyRaw!, undefined, onlyRaw!.raw);
    const k = chunkPaths(root, hexOf(kept!));
    await writeFile(`${k.z}.tmp-0123abcd`, "partial");
    await writeFile(`${k.raw}.tmp-ffff`, "partial");
    await writeFile(path.join(k.dir, "README"), "junk");
    await mkdir(path.join(root, "chunks", "not-a-shard"), { recursive: true });

    s = await openStore(dbPath, { root });
    const present = [kept!.digest, adoptMe!.digest, onlyZ!.digest];
    try {
      expect(new Set(s.store.digests())).toEqual(new Set(present));
      expect(await s.store.readRaw(adoptMe!.digest, 0, 1 << 20)).toEqual(adoptMe!.raw);
      expect(await s.store.readCompressed(kept!.digest)).toEqual(kept!.compressed);
      const size = (c: TestChunk) => c.compressed.length + c.raw.length;
      expect(s.store.stats().bytes).toBe(size(kept!) + size(adoptMe!) + onlyZ!.compressed.length);
      const onlyZFile = expectedFiles([onlyZ!.digest]).find((f) => f.endsWith(".z"))!;
      expect(await listChunkFiles(root)).toEqual([...expectedFiles([kept!.digest, adoptMe!.digest]), onlyZFile].sort());
      // the compressed-only orphan inflates on its first raw read, and then has both files
      expect(await s.store.readRaw(onlyZ!.digest, 0, 1 << 20)).toEqual(onlyZ!.raw);
      expect(await listChunkFiles(root)).toEqual(expectedFiles(present));
      expect(s.store.stats().bytes).toBe(size(kept!) + size(adoptMe!) + size(onlyZ!));
      const keys: string[] = [];
      for await (const key of s.db.sublevel("chunks").keys()) keys.push(key);
      expect(keys.sort()).toEqual(present.map((d) => `chunk!${d}`).sort());
    } finally {
      await s.close();
    }

    // The adopted chunks are recorded: a second open finds the same store and changes nothing.
    s = await openStore(dbPath, { root });
    try {
      expect(new Set(s.store.digests())).toEqual(new Set(present));
      expect(s.store.stats().bytes).toBe(kept!.compressed.length + kept!.raw.length + adoptMe!.compressed.length + adoptMe!.raw.length + onlyZ!.compressed.length + onlyZ!.raw.length);
    } finally {
      await s.close();
    }
  });
});
