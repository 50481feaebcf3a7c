// The ChunkCache conformance suite, run against every implementation and every fake.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChunkStore } from "@shoal/store";
import { Level } from "level";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChunkCache } from "../src/index.ts";
import { chunkCacheSuite, describeSuite, failedChecks, MemoryChunkCache } from "../testsuite/index.ts";

let dir = "";
let n = 0;
const open = new Map<ChunkCache, () => Promise<void>>();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "shoal-cache-suite-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A fresh ChunkStore on its own LevelDB, as the agent opens it. */
async function chunkStore(): Promise<ChunkCache> {
  const at = join(dir, String(++n));
  const db = new Level<string, string>(join(at, "meta"));
  await db.open();
  const store = await ChunkStore.open({ db }, { root: join(at, "store") });
  open.set(store, async () => {
    await store.close();
    await db.close();
  });
  return store;
}

const close = async (c: ChunkCache) => {
  await open.get(c)?.();
  open.delete(c);
};

describeSuite("ChunkCache: ChunkStore (@shoal/store)", chunkCacheSuite, chunkStore, close);
describeSuite("ChunkCache: MemoryChunkCache (the fetcher tests' fake)", chunkCacheSuite, async () => new MemoryChunkCache());

describe("the ChunkCache suite", () => {
  it("fails a cache that breaks the contract", async () => {
    /** Reads past the end of a chunk come back as they were asked, and wrong bytes are stored unchecked. */
    class Careless extends MemoryChunkCache {
      override async readRaw(d: string, offset: number, length: number) {
        const b = await super.readRaw(d, 0, Number.MAX_SAFE_INTEGER);
        return b && Buffer.concat([b, Buffer.alloc(length)]).subarray(offset, offset + length);
      }
      override async put(d: string, z: Uint8Array, raw: Uint8Array) {
        return super.put(d, z, raw, { verified: true });
      }
    }
    const failed = await failedChecks(chunkCacheSuite, async () => new Careless());
    expect(failed).toEqual([
      "reads are cut at the end of the chunk and empty past it",
      "unverified bytes that fail their digest are refused and not stored",
    ]);
  });
});
