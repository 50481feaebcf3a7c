import { createHash } from "node:crypto";
import { join } from "node:path";
import { Level } from "level";
import { RegistryClient } from "@shoal/oci";
import type { RunningRegistry } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseRangeHeader, RangeNotSatisfiableError } from "../src/index.ts";
import { Cleanup, registryWithImage, type TestImage } from "./harness.ts";

const BLOCK = 256 * 1024;

describe("supernode: byte ranges of any blob, against the Debian registry", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;
  let blob: Buffer;
  let digest: string;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "team/plain", 3 * 1024 * 1024));
    digest = image.originalLayers[0]!; // an ordinary gzip layer, never converted
    const c = new RegistryClient({}, { registry: registry.host, plainHttp: true });
    blob = Buffer.from(await c.getBlob(image.repository, digest, { maxSize: 1 << 30 }));
    await c.close();
    expect(blob.length).toBeGreaterThan(3 * BLOCK);
  });
  afterAll(() => cleanup.run());

  const url = (base: string, d = digest) => `${base}/v1/blobs/${image.registry}/${image.repository}/${d}`;
  const get = async (base: string, range?: string) => {
    const res = await fetch(url(base), range ? { headers: { range } } : {});
    return { res, body: Buffer.from(await res.arrayBuffer()) };
  };

  it("serves ranges and whole blobs equal to the registry's bytes, each block fetched once for concurrent callers, then from its cache", async () => {
    const root = await cleanup.tempDir("shoal-sn-blobs-a-");
    const sn = await cleanup.supernode({ root, blobBlockBytes: BLOCK });
    await registry.settle();
    await registry.resetStats();
    const ranges: Array<[number, number]> = [[0, 99], [BLOCK - 10, BLOCK + 10], [5, 3 * BLOCK + 7], [blob.length - 1, blob.length - 1]];
    const answers = await Promise.all([...ranges, ...ranges].map(([a, b]) => get(sn.url, `bytes=${a}-${b}`)));
    answers.forEach(({ res, body }, k) => {
      const [a, b] = ranges[k % ranges.length]!;
      expect(res.status).toBe(206);
      expect(res.headers.get("content-range")).toBe(`bytes ${a}-${b}/${blob.length}`);
      expect(body.equals(blob.subarray(a, b + 1))).toBe(true);
    });
    const whole = await get(sn.url);
    expect(whole.res.status).toBe(200);
    expect(`sha256:${createHash("sha256").update(whole.body).digest("hex")}`).toBe(digest);
    const suffix = await get(sn.url, "bytes=-1000");
    expect(suffix.body.equals(blob.subarray(blob.length - 1000))).toBe(true);
    await registry.settle();
    const served = registry.stats().blobBytes;
    expect(served).toBe(blob.length); // every block once, however many asked
    await sn.close();
    // after a restart: from the cache
    const again = await cleanup.supernode({ root, blobBlockBytes: BLOCK });
    const back = await get(again.url, `bytes=${BLOCK}-${2 * BLOCK + 5}`);
    expect(back.body.equals(blob.subarray(BLOCK, 2 * BLOCK + 6))).toBe(true);
    await registry.settle();
    expect(registry.stats().blobBytes).toBe(served);
  });

  it("keeps block records only for blocks still in its cache: those of evicted blocks are swept at start", async () => {
    const root = await cleanup.tempDir("shoal-sn-blobs-sweep-");
    const blocks = Math.ceil(blob.length / BLOCK);
    const sn = await cleanup.supernode({ root, blobBlockBytes: BLOCK, cacheSize: 3 * BLOCK });
    expect((await get(sn.url)).body.equals(blob)).toBe(true); // more blocks than the cache holds
    await sn.close();
    const records = async () => {
      const level = new Level<string, string>(join(root, "meta"), { keyEncoding: "utf8", valueEncoding: "utf8" });
      await level.open();
      try {
        let n = 0;
        for await (const _ of level.keys({ gte: "blk!", lt: "blk!\uffff" })) n++;
        return n;
      } finally {
        await level.close();
      }
    };
    expect(await records()).toBe(blocks);
    const again = await cleanup.supernode({ root, blobBlockBytes: BLOCK, cacheSize: 3 * BLOCK });
    await again.close();
    const left = await records();
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(3);
  });

  it("publishes a blob's block digests once it read the whole blob and it matched its digest", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-blocks-"), blobBlockBytes: BLOCK });
    const res = await fetch(`${sn.url}/v1/blocks/${image.registry}/${image.repository}/${digest}`);
    expect(res.status).toBe(200);
    const list = (await res.json()) as { size: number; blockBytes: number; blocks: string[] };
    expect(list.size).toBe(blob.length);
    expect(list.blockBytes).toBe(BLOCK);
    const want = Array.from({ length: Math.ceil(blob.length / BLOCK) }, (_, i) => `sha256:${createHash("sha256").update(blob.subarray(i * BLOCK, (i + 1) * BLOCK)).digest("hex")}`);
    expect(list.blocks).toEqual(want);
    const missing = await fetch(`${sn.url}/v1/blocks/${image.registry}/${image.repository}/sha256:${"0".repeat(64)}`);
    expect(missing.status).toBe(404);
  });

  it("answers ranges it cannot serve with 416 and the size, and unknown blobs with 404", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-blobs-b-"), blobBlockBytes: BLOCK });
    for (const range of [`bytes=${blob.length}-`, "bytes=10-5", "bytes=-0", "items=0-1", "bytes=0-1,5-6"]) {
      const { res, body } = await get(sn.url, range);
      expect(res.status, range).toBe(416);
      expect(res.headers.get("content-range")).toBe(`bytes */${blob.length}`);
      expect(JSON.parse(body.toString())).toMatchObject({ code: "SHOAL_ERR_RANGE_NOT_SATISFIABLE" });
    }
    const missing = await fetch(url(sn.url, `sha256:${"0".repeat(64)}`));
    expect(missing.status).toBe(404);
    const head = await fetch(url(sn.url), { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get("content-length"))).toBe(blob.length);
    expect(head.headers.get("accept-ranges")).toBe("bytes");
  });
});

describe("parseRangeHeader", () => {
  it("parses the single-range forms and refuses the rest", () => {
    expect(parseRangeHeader(undefined, 100)).toBeUndefined();
    expect(parseRangeHeader("bytes=0-9", 100)).toEqual({ start: 0, end: 10 });
    expect(parseRangeHeader("bytes=90-200", 100)).toEqual({ start: 90, end: 100 });
    expect(parseRangeHeader("bytes=50-", 100)).toEqual({ start: 50, end: 100 });
    expect(parseRangeHeader("bytes=-30", 100)).toEqual({ start: 70, end: 100 });
    expect(parseRangeHeader("bytes=-300", 100)).toEqual({ start: 0, end: 100 });
    for (const bad of ["bytes=100-", "bytes=-", "bytes=5-2", "bytes=a-b", "bytes=1-2,3-4", "bits=0-1", "bytes=-0"]) {
      expect(() => parseRangeHeader(bad, 100), bad).toThrow(RangeNotSatisfiableError);
    }
  });
});
