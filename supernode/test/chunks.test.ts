import { createHash } from "node:crypto";
import { decodeFooter, FOOTER_SIZE } from "@shoal/blockindex";
import { ChunkPeer, generateSwarmKey } from "@shoal/p2p";
import { startDelayProxy, waitFor, type RunningRegistry } from "@shoal/testkit";
import { SupernodeClient } from "@shoal/swarm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClientPool } from "@shoal/oci";
import { pino } from "pino";
import { blobChunks, Cleanup, fetchChunks, registryWithImage, type TestImage } from "./harness.ts";
import { ChunkService, IndexCache, type CompressedChunkStore, type Supernode } from "../src/index.ts";

describe("supernode chunk serving against the Debian registry", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "team/app", 8 * 1024 * 1024, 64 * 1024));
  });
  afterAll(() => cleanup.run());

  it("serves chunk ranges equal to the blob bytes, then from its cache", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-a-") });
    const layer = image.layers[0]!;
    const n = layer.index.chunkCount;
    expect(n).toBeGreaterThan(8);
    await registry.settle();
    await registry.resetStats();
    const all = await fetchChunks(sn.url, image, layer.digest, 0, n - 1);
    expect(all.status).toBe(200);
    expect(Buffer.from(await all.arrayBuffer()).equals(blobChunks(layer, 0, n - 1))).toBe(true);
    const mid = await fetchChunks(sn.url, image, layer.digest, 3, 5);
    expect(mid.headers.get("x-shoal-chunk-lengths")).toBe([3, 4, 5].map((i) => layer.index.chunk(i).length).join(","));
    expect(Buffer.from(await mid.arrayBuffer()).equals(blobChunks(layer, 3, 5))).toBe(true);
    await registry.settle();
    const first = registry.stats().blobBytes;
    const dataBytes = layer.index.dataSize;
    expect(first).toBeGreaterThanOrEqual(dataBytes);
    expect(first).toBeLessThanOrEqual(layer.size);
    // Again: all from the cache, nothing from the registry.
    for (const [a, b] of [[0, n - 1], [1, 1], [n - 1, n - 1]] as const) {
      const res = await fetchChunks(sn.url, image, layer.digest, a, b);
      expect(Buffer.from(await res.arrayBuffer()).equals(blobChunks(layer, a, b))).toBe(true);
    }
    await registry.settle();
    expect(registry.stats().blobBytes).toBe(first);
  });

  it("keeps serving from its cache after a restart (index and chunks persisted)", async () => {
    const root = await cleanup.tempDir("shoal-sn-b-");
    const layer = image.layers[1]!;
    const sn1 = await cleanup.supernode({ root });
    const first = await fetchChunks(sn1.url, image, layer.digest, 0, 3);
    expect(first.status).toBe(200);
    // the answer streams (its header goes out with the first chunk): what was served is kept once it was all read
    expect(Buffer.from(await first.arrayBuffer()).equals(blobChunks(layer, 0, 3))).toBe(true);
    await sn1.close();
    await registry.settle();
    await registry.resetStats();
    const sn2 = await cleanup.supernode({ root });
    const res = await fetchChunks(sn2.url, image, layer.digest, 0, 3);
    expect(Buffer.from(await res.arrayBuffer()).equals(blobChunks(layer, 0, 3))).toBe(true);
    await registry.settle();
    expect(registry.stats().blobBytes).toBe(0);
  });

  it("serves the chunks it served lately from memory: gone from its store, the registry is not asked again", async () => {
    const layer = image.layers[0]!;
    const hits = async (sn: Supernode) => Number(/^shoal_supernode_cache_hits_total (\d+)$/m.exec(await (await fetch(`${sn.metricsUrl}/metrics`)).text())?.[1]);
    /** Fetch chunks a..b, then until they are all answered as cache hits: none is in flight any more, each is stored (served before stored). */
    const fetchStored = async (sn: Supernode, a: number, b: number) => {
      const first = await fetchChunks(sn.url, image, layer.digest, a, b);
      expect(Buffer.from(await first.arrayBuffer()).equals(blobChunks(layer, a, b))).toBe(true);
      await waitFor("the chunks stored", async () => {
        const before = await hits(sn);
        await (await fetchChunks(sn.url, image, layer.digest, a, b)).arrayBuffer();
        return (await hits(sn)) - before === b - a + 1 ? true : undefined;
      });
    };
    // the same with no memory for hot chunks: the store dropped them, so they come from the registry again
    for (const hotChunkBytes of [undefined, 0]) {
      // a store of 8 chunks: 10 push out the least recently read
      const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-hot-"), cacheSize: 8 * 64 * 1024, metricsListen: { host: "127.0.0.1", port: 0 }, ...(hotChunkBytes !== undefined ? { hotChunkBytes } : {}) });
      await fetchStored(sn, 0, 3);
      await fetchStored(sn, 4, 9);
      await registry.settle();
      await registry.resetStats();
      const again = await fetchChunks(sn.url, image, layer.digest, 0, 3);
      expect(Buffer.from(await again.arrayBuffer()).equals(blobChunks(layer, 0, 3))).toBe(true);
      await registry.settle();
      if (hotChunkBytes === 0) expect(registry.stats().blobBytes).toBeGreaterThan(0);
      else expect(registry.stats().blobBytes).toBe(0);
    }
  });

  it("fetches chunks once from the registry however many callers ask at the same moment", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-c-") });
    const layer = image.layers[1]!;
    const n = layer.index.chunkCount;
    const [a, b] = [2, Math.min(n - 1, 20)];
    await registry.settle();
    await registry.resetStats();
    const bodies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await fetchChunks(sn.url, image, layer.digest, a, b);
        expect(res.status).toBe(200);
        return Buffer.from(await res.arrayBuffer());
      }),
    );
    const want = blobChunks(layer, a, b);
    for (const body of bodies) expect(body.equals(want)).toBe(true);
    await registry.settle();
    const s = registry.stats();
    const indexBytes = layer.size - layer.index.dataSize - FOOTER_SIZE;
    // Footer + index once, the chunks once.
    expect(s.blobBytes).toBe(want.length + FOOTER_SIZE + indexBytes);
    expect(s.blobRequests).toBe(3);
  });

  it("serves a layer's index region, read from the registry once for every caller", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-idx-") });
    const layer = image.layers[1]!;
    const location = decodeFooter(layer.blob.subarray(layer.blob.length - FOOTER_SIZE), layer.blob.length, layer.digest);
    const expected = layer.blob.subarray(location.offset, location.offset + location.size);
    const indexDigest = `sha256:${createHash("sha256").update(expected).digest("hex")}`;
    await registry.settle();
    await registry.resetStats();
    const url = `${sn.url}/v1/index/${image.registry}/${image.repository}/${layer.digest}`;
    const answers = await Promise.all([url, `${url}?index=${indexDigest}`, url].map((u) => fetch(u)));
    for (const res of answers) {
      expect(res.status).toBe(200);
      expect(res.headers.get("x-shoal-index-offset")).toBe(String(location.offset));
      expect(res.headers.get("x-shoal-index-digest")).toBe(indexDigest);
      expect(Buffer.from(await res.arrayBuffer()).equals(expected)).toBe(true);
    }
    await registry.settle();
    expect(registry.stats().blobBytes).toBeLessThanOrEqual(location.size + FOOTER_SIZE);
    const wrong = await fetch(`${url}?index=sha256:${"1".repeat(64)}`);
    expect(wrong.status).toBe(502);
    expect(((await wrong.json()) as { code: string }).code).toBe("SHOAL_ERR_DIGEST_MISMATCH");
    const notLazy = await fetch(`${sn.url}/v1/index/${image.registry}/${image.repository}/${image.originalLayers[0]}`);
    expect(((await notLazy.json()) as { code: string }).code).toBe("SHOAL_ERR_NOT_CONVERTED");
  });

  it("in the peer swarm, serves its cached chunks over libp2p and lists itself only for those", async () => {
    const key = generateSwarmKey();
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-seed-"), swarm: { swarmKey: key, listen: ["/ip4/127.0.0.1/tcp/0"] } });
    const health = (await (await fetch(`${sn.url}/v1/health`)).json()) as { peerId: string; addrs: string[] };
    expect(health.peerId).toBe(sn.peer!.peerId);
    const layer = image.layers[0]!;
    const peersOf = async (q: string) => (await (await fetch(`${sn.url}/v1/peers?layer=${layer.digest}${q}`)).json()) as Array<{ peerId: string; chunks?: string }>;
    expect(await peersOf("")).toEqual([]); // nothing cached yet
    expect((await fetchChunks(sn.url, image, layer.digest, 0, 2)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // its bitmap is recomputed at most once a second
    const [self] = await peersOf("");
    expect(self?.peerId).toBe(sn.peer!.peerId);
    const bits = Buffer.from(self!.chunks!, "base64");
    expect([0, 1, 2, 3].map((i) => (bits[i >> 3]! >> (i & 7)) & 1)).toEqual([1, 1, 1, 0]);
    expect((await peersOf("&chunk=1")).map((p) => p.peerId)).toEqual([sn.peer!.peerId]);
    expect(await peersOf("&chunk=3")).toEqual([]);
    // an agent's chunk peer with the key gets the cached chunk over libp2p; one without it gets nothing
    const digest = `sha256:${layer.index.chunk(1).digest.toString("hex")}`;
    const client = new ChunkPeer({ provider: { readCompressed: async () => undefined } }, { swarmKey: key });
    const outsider = new ChunkPeer({ provider: { readCompressed: async () => undefined } }, { swarmKey: generateSwarmKey(), handshakeTimeoutMs: 1000 });
    await client.start();
    await outsider.start();
    try {
      expect(Buffer.from(await client.fetchChunk(sn.peer!, digest, { signal: AbortSignal.timeout(10_000) })).equals(blobChunks(layer, 1, 1))).toBe(true);
      await expect(outsider.fetchChunk(sn.peer!, digest, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    } finally {
      await client.stop();
      await outsider.stop();
    }
  });

  it("answers bad and unserviceable chunk requests with JSON errors and keeps running", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-d-"), originRetryMs: 300 });
    const layer = image.layers[0]!;
    const n = layer.index.chunkCount;
    const expectError = async (path: string, status: number, code: string) => {
      const res = await fetch(`${sn.url}${path}`);
      expect(res.status, path).toBe(status);
      expect(res.headers.get("content-type")).toBe("application/json");
      const body = (await res.json()) as { code: string; message: string };
      expect(body.code, path).toBe(code);
      expect(typeof body.message).toBe("string");
    };
    const base = `/v1/chunks/${image.registry}/${image.repository}`;
    await expectError(`${base}/${layer.digest}`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`${base}/${layer.digest}?first=1&last=x`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`${base}/${layer.digest}?first=-1&last=2`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`${base}/sha256:abc?first=0&last=0`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`/v1/chunks/${image.registry}/${layer.digest}?first=0&last=0`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`/v1/chunks/${image.registry}/Team/App/${layer.digest}?first=0&last=0`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`/v1/chunks/bad_registry!/${image.repository}/${layer.digest}?first=0&last=0`, 400, "SHOAL_ERR_BAD_REQUEST");
    await expectError(`${base}/${layer.digest}?first=3&last=2`, 416, "SHOAL_ERR_CHUNK_RANGE");
    await expectError(`${base}/${layer.digest}?first=0&last=${n}`, 416, "SHOAL_ERR_CHUNK_RANGE");
    await expectError(`${base}/sha256:${"0".repeat(64)}?first=0&last=0`, 404, "SHOAL_ERR_REGISTRY_NOT_FOUND");
    await expectError(`/v1/chunks/${image.registry}/nosuch/repo/${layer.digest}?first=0&last=0`, 404, "SHOAL_ERR_REGISTRY_NOT_FOUND");
    await expectError(`${base}/${image.originalLayers[0]}?first=0&last=0`, 422, "SHOAL_ERR_NOT_CONVERTED");
    await expectError(`${base}/${layer.digest}?first=0&last=0&index=sha256:${"1".repeat(64)}`, 502, "SHOAL_ERR_DIGEST_MISMATCH");
    await expectError(`/v1/chunks/127.0.0.1:1/${image.repository}/${layer.digest}?first=0&last=0`, 502, "SHOAL_ERR_REGISTRY_UNAVAILABLE");
    await expectError(`/v1/nothing`, 404, "SHOAL_ERR_NOT_FOUND");
    const auth = await fetch(`${sn.url}${base}/${layer.digest}?first=0&last=0`, { headers: { authorization: "Bearer xyz" } });
    expect(auth.status).toBe(400);
    // Still alive and serving.
    expect(await (await fetch(`${sn.url}/v1/health`)).json()).toEqual({ ok: true });
    const ok = await fetchChunks(sn.url, image, layer.digest, 0, 0);
    expect(Buffer.from(await ok.arrayBuffer()).equals(blobChunks(layer, 0, 0))).toBe(true);
  });

  it("refuses registries outside its allow list", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-e-"), allowedRegistries: ["registry.example"] });
    const res = await fetchChunks(sn.url, image, image.layers[0]!.digest, 0, 0);
    expect(res.status).toBe(403);
    expect(((await res.json()) as { code: string }).code).toBe("SHOAL_ERR_REGISTRY_NOT_ALLOWED");
  });
});

describe("ChunkService: a chunk is served before it is stored", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "team/gated", 2 * 1024 * 1024, 64 * 1024));
  });
  afterAll(() => cleanup.run());

  it("hands verified chunks to callers while the store still writes them, and serves them to later callers meanwhile", async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const stored = new Map<string, Buffer>();
    // a store whose writes wait for the gate, as disk syncs would
    const cache: CompressedChunkStore = {
      has: (d) => stored.has(d),
      putCompressed: async (d, c) => {
        await gate;
        stored.set(d, Buffer.from(c));
      },
      readCompressed: async (d) => stored.get(d),
    };
    const db = new Map<string, string>();
    const origins = new RegistryClientPool({}, { plainHttp: true });
    cleanup.add(() => origins.close());
    const logger = pino({ level: "silent" });
    const indexes = new IndexCache({ db: { get: async (k) => db.get(k), put: async (k, v) => void db.set(k, v) }, origins, logger });
    const service = new ChunkService({ indexes, cache, origins, logger });
    cleanup.add(async () => {
      open();
      await service.close();
    });
    const layer = image.layers[0]!;
    const ref = { registry: image.registry, repository: image.repository, digest: layer.digest };
    await service.getIndex(ref); // the index first: only chunk requests are counted below
    await registry.settle();
    await registry.resetStats();
    const first = await service.getChunks(ref, 1, 3);
    expect(Buffer.concat(first).equals(blobChunks(layer, 1, 3))).toBe(true);
    expect(stored.size).toBe(0); // nothing written yet: the callers did not wait for it
    const again = await service.getChunks(ref, 2, 2);
    expect(again[0]!.equals(blobChunks(layer, 2, 2))).toBe(true);
    await registry.settle();
    expect(registry.stats().blobRequests).toBe(1); // the second caller got the flight's bytes
    open();
  });
});

describe("supernode: a run streams from the origin to the caller", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "team/stream", 2 * 1024 * 1024, 64 * 1024));
  });
  afterAll(() => cleanup.run());

  it("hands the caller a run's first chunk while the origin is still sending the rest of the range", async () => {
    const layer = image.layers[0]!;
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-stream-"), accessTtlMs: 0 });
    const direct = new SupernodeClient({ url: sn.url });
    // the origin, far away: it sends the first chunk and a bit of the range, then stalls until released
    const far = await startDelayProxy({ target: registry.host, pauseAfter: layer.index.chunk(0).length + 100 });
    cleanup.add(() => far.stop());
    const ref = { registry: far.host, repository: image.repository, digest: layer.digest };
    await direct.index(ref, undefined); // the supernode has the index: only the chunks' range is held below
    far.hold();
    const n = Math.min(8, layer.index.chunkCount);
    const heard: number[] = [];
    const got = await direct.chunks(ref, 0, n - 1, {
      onChunk: (k) => {
        heard.push(k);
        if (k === 0) far.release(); // the rest flows only once the first chunk reached us
      },
    });
    expect(heard[0]).toBe(0);
    expect(Buffer.concat(got).equals(blobChunks(layer, 0, n - 1))).toBe(true);
  });
});
