import { readFile, writeFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { chunkPaths } from "../src/index.ts";
import { countingMetrics, makeChunk, openStore, suiteDir, type TestChunk } from "./helpers.ts";

const suite = suiteDir();
const hexOf = (c: TestChunk): string => c.digest.slice("sha256:".length);

/** Flip two bytes of `file` in place: same length, other bytes. */
async function rot(file: string): Promise<void> {
  const b = await readFile(file);
  b[Math.floor(b.length / 2)]! ^= 0x55;
  b[b.length - 1]! ^= 0x01;
  await writeFile(file, b);
}

describe("ChunkStore after a restart, with files rotted on disk (same length)", () => {
  it("never hands out a rotted byte: the chunk is dropped, counted, and reads as absent", async () => {
    const { root, dbPath } = suite.paths();
    const [rawRot, zRot, sound] = [makeChunk(1, 40_000), makeChunk(2, 40_000), makeChunk(3, 40_000)] as TestChunk[];
    let s = await openStore(dbPath, { root });
    for (const c of [rawRot!, zRot!, sound!]) await s.store.put(c.digest, c.compressed, c.raw);
    await s.close();
    await rot(chunkPaths(root, hexOf(rawRot!)).raw);
    await rot(chunkPaths(root, hexOf(zRot!)).z);

    const metrics = countingMetrics();
    s = await openStore(dbPath, { root }, { metrics });
    try {
      // open sees whole files of the recorded sizes: all three are present until read
      expect(s.store.has(rawRot!.digest) && s.store.has(zRot!.digest)).toBe(true);
      expect(await s.store.readRaw(rawRot!.digest, 0, 1 << 20)).toBeUndefined();
      expect(await s.store.readCompressed(zRot!.digest)).toBeUndefined();
      expect(await s.store.readRaw(sound!.digest, 0, 1 << 20)).toEqual(sound!.raw);
      expect(metrics.corrupt.value).toBe(2);
      expect(s.store.has(rawRot!.digest) || s.store.has(zRot!.digest)).toBe(false);
      // fetched again, it is whole again
      await s.store.put(rawRot!.digest, rawRot!.compressed, rawRot!.raw);
      expect(await s.store.readRaw(rawRot!.digest, 0, 1 << 20)).toEqual(rawRot!.raw);
    } finally {
      await s.close();
    }
  });
});
