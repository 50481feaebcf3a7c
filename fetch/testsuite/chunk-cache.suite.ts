/** The `ChunkCache` contract (see `fetch/src/chunk-cache.ts`), as checks. */
import { gzipSync } from "node:zlib";
import { digestOf, ShoalError } from "@shoal/base";
import type { ChunkCache } from "../src/index.ts";
import { assert, type Check } from "./suite.ts";

/** A chunk as the cache stores it: its digest, compressed member and inflated bytes. */
function chunk(seed: number, size = 5000): { digest: string; z: Buffer; raw: Buffer } {
  const raw = Buffer.alloc(size);
  for (let i = 0; i < size; i++) raw[i] = (Math.imul(i + seed * 7919, 2654435761) >>> 24) & 0xff;
  const z = gzipSync(raw);
  return { digest: digestOf(z), z, raw };
}

const eq = (a: Buffer | undefined, b: Buffer) => a !== undefined && a.equals(b);

/** Every check of the ChunkCache contract; each gets a fresh, empty cache. */
export const chunkCacheSuite: readonly Check<ChunkCache>[] = [
  {
    name: "put stores both forms: has, hasRaw, and reads of any range",
    async run(cache) {
      const c = chunk(1);
      assert(!cache.has(c.digest) && !cache.hasRaw(c.digest), "an empty cache has the chunk");
      await cache.put(c.digest, c.z, c.raw);
      assert(cache.has(c.digest) && cache.hasRaw(c.digest), "after put: has and hasRaw");
      assert(eq(await cache.readRaw(c.digest, 0, c.raw.length), c.raw), "readRaw of the whole chunk");
      assert(eq(await cache.readRaw(c.digest, 100, 50), c.raw.subarray(100, 150)), "readRaw of a middle range");
    },
  },
  {
    name: "reads are cut at the end of the chunk and empty past it",
    async run(cache) {
      const c = chunk(2);
      await cache.put(c.digest, c.z, c.raw, { verified: true });
      assert(eq(await cache.readRaw(c.digest, c.raw.length - 10, 100), c.raw.subarray(c.raw.length - 10)), "a read across the end is shortened");
      assert(eq(await cache.readRaw(c.digest, c.raw.length, 10), Buffer.alloc(0)), "a read at the end is empty");
      assert(eq(await cache.readRaw(c.digest, c.raw.length + 5, 10), Buffer.alloc(0)), "a read past the end is empty");
      assert(eq(await cache.readRaw(c.digest, 0, 0), Buffer.alloc(0)), "a read of length 0 is empty");
    },
  },
  {
    name: "putCompressed stores the compressed form only; the first read inflates and stores it",
    async run(cache) {
      const c = chunk(3);
      await cache.putCompressed(c.digest, c.z, c.raw.length);
      assert(cache.has(c.digest) && !cache.hasRaw(c.digest), "after putCompressed: has, not hasRaw");
      assert(eq(await cache.readRaw(c.digest, 10, 20), c.raw.subarray(10, 30)), "readRaw of a compressed-only chunk");
      assert(cache.hasRaw(c.digest), "after the first read: hasRaw");
    },
  },
  {
    name: "inflateStored inflates a compressed-only chunk, and is false for an absent one",
    async run(cache) {
      const c = chunk(4);
      await cache.putCompressed(c.digest, c.z, c.raw.length, { verified: true });
      assert((await cache.inflateStored(c.digest)) === true, "inflateStored of a compressed-only chunk");
      assert(cache.hasRaw(c.digest), "hasRaw after inflateStored");
      assert((await cache.inflateStored(chunk(5).digest)) === false, "inflateStored of an absent chunk");
    },
  },
  {
    name: "an absent chunk reads as undefined",
    async run(cache) {
      const c = chunk(6);
      assert((await cache.readRaw(c.digest, 0, 10)) === undefined, "readRaw of an absent chunk");
    },
  },
  {
    name: "unverified bytes that fail their digest are refused and not stored",
    async run(cache) {
      const c = chunk(7);
      const other = chunk(8);
      let err: unknown;
      try {
        await cache.put(c.digest, other.z, other.raw);
      } catch (e) {
        err = e;
      }
      assert(err instanceof ShoalError && err.code === "SHOAL_ERR_DIGEST_MISMATCH", `put of wrong bytes: ${String(err)}`);
      err = undefined;
      try {
        await cache.putCompressed(c.digest, other.z, other.raw.length);
      } catch (e) {
        err = e;
      }
      assert(err instanceof ShoalError && err.code === "SHOAL_ERR_DIGEST_MISMATCH", `putCompressed of wrong bytes: ${String(err)}`);
      assert(!cache.has(c.digest), "a refused chunk is stored");
    },
  },
  {
    name: "storing a present chunk again changes nothing",
    async run(cache) {
      const c = chunk(9);
      await cache.put(c.digest, c.z, c.raw);
      await cache.putCompressed(c.digest, c.z, c.raw.length);
      await cache.put(c.digest, c.z, c.raw);
      assert(cache.hasRaw(c.digest) && eq(await cache.readRaw(c.digest, 0, c.raw.length), c.raw), "the chunk after storing it three times");
    },
  },
];
