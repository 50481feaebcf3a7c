// A supernode whose API threads take the connections (--api-threads): the same answers as the main
// thread's, chunks through the threads, every other route passed on to the main thread.
import { readFile } from "node:fs/promises";
import { connect } from "node:net";
import { waitFor, type RunningRegistry } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobChunks, Cleanup, fetchChunks, registryWithImage, type TestImage } from "./harness.ts";
import type { Supernode } from "../src/index.ts";

/** Sockets listening on TCP `port` of 127.0.0.1 (from /proc/net/tcp: state 0A). */
async function listenersOn(port: number): Promise<number> {
  const rows = (await readFile("/proc/net/tcp", "utf8")).split("\n").slice(1);
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  return rows.filter((r) => {
    const f = r.trim().split(/\s+/);
    return f[1] === local && f[3] === "0A";
  }).length;
}

describe("supernode --api-threads", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;
  let sn: Supernode;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "threads/app", 4 * 1024 * 1024, 64 * 1024));
    sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-threads-"), apiThreads: 3 });
  });
  afterAll(() => cleanup.run());

  it("listens with one socket per thread on the API's port, none of the main thread's", async () => {
    expect(await listenersOn(Number(new URL(sn.url).port))).toBe(3);
  });

  it("serves chunk ranges equal to the blob bytes from the origin, then from its cache, over many connections at once", async () => {
    const layer = image.layers[0]!;
    const n = layer.index.chunkCount;
    await registry.settle();
    await registry.resetStats();
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(Array.from({ length: 12 }, async (_, k) => {
        const a = k % n;
        const b = Math.min(n - 1, a + 5);
        const res = await fetchChunks(sn.url, image, layer.digest, a, b);
        expect(res.status).toBe(200);
        expect(res.headers.get("x-shoal-chunk-lengths")).toBe(Array.from({ length: b - a + 1 }, (_, i) => layer.index.chunk(a + i).length).join(","));
        return Buffer.from(await res.arrayBuffer()).equals(blobChunks(layer, a, b));
      }));
      expect(answers.every(Boolean)).toBe(true);
    }
    await registry.settle();
    // every chunk once from the origin however many threads asked
    expect(registry.stats().blobBytes).toBeLessThanOrEqual(layer.size);
  });

  it("answers bad chunk requests with the main thread's JSON errors", async () => {
    const layer = image.layers[0]!;
    const base = `${sn.url}/v1/chunks/${image.registry}/${image.repository}/${layer.digest}`;
    for (const [q, status, code] of [["?first=1&last=x", 400, "SHOAL_ERR_BAD_REQUEST"], [`?first=0&last=${layer.index.chunkCount}`, 416, "SHOAL_ERR_CHUNK_RANGE"]] as const) {
      const res = await fetch(`${base}${q}`);
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe("application/json");
      expect(((await res.json()) as { code: string }).code).toBe(code);
    }
    const priority = await fetch(`${base}?first=0&last=0`, { headers: { "x-shoal-priority": "soon" } });
    expect(priority.status).toBe(400);
    await priority.arrayBuffer();
  });

  it("passes every other route on to the main thread: health, index, tracker, unknown routes", async () => {
    const layer = image.layers[1]!;
    const health = await fetch(`${sn.url}/v1/health`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as { ok: boolean }).ok).toBe(true);
    const index = await fetch(`${sn.url}/v1/index/${image.registry}/${image.repository}/${layer.digest}`);
    expect(index.status).toBe(200);
    expect((await index.arrayBuffer()).byteLength).toBeGreaterThan(0);
    const announce = await fetch(`${sn.url}/v1/announce`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ not: "sealed" }) });
    expect(announce.status).toBe(403);
    expect(((await announce.json()) as { code: string }).code).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    const none = await fetch(`${sn.url}/v1/nothing`);
    expect(none.status).toBe(404);
    expect(((await none.json()) as { code: string }).code).toBe("SHOAL_ERR_NOT_FOUND");
  });

  it("keeps serving after callers go away in the middle of answers", async () => {
    const layer = image.layers[0]!;
    const n = layer.index.chunkCount;
    for (let k = 0; k < 8; k++) {
      const ac = new AbortController();
      const res = await fetch(`${sn.url}/v1/chunks/${image.registry}/${image.repository}/${layer.digest}?first=0&last=${n - 1}`, { signal: ac.signal });
      const reader = res.body!.getReader();
      await reader.read();
      ac.abort();
    }
    const res = await fetchChunks(sn.url, image, layer.digest, 0, n - 1);
    expect(Buffer.from(await res.arrayBuffer()).equals(blobChunks(layer, 0, n - 1))).toBe(true);
  });
});

describe("supernode --api-threads, a caller that does not read", () => {
  const cleanup = new Cleanup();
  let image: TestImage;
  let sn: Supernode;

  beforeAll(async () => {
    // a layer of more than 256 chunks: one answer (16 MiB) is more than the threads' window and the sockets' buffers
    ({ image } = await registryWithImage(cleanup, "threads/slow", 40 * 1024 * 1024, 64 * 1024));
    sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-threads-slow-"), apiThreads: 1, metricsListen: { host: "127.0.0.1", port: 0 } });
  });
  afterAll(() => cleanup.run());

  it("holds the answer back until the caller reads, as the main thread's own sockets do", async () => {
    const served = async () => Number(/^shoal_supernode_served_bytes_total (\d+)$/m.exec(await (await fetch(`${sn.metricsUrl}/metrics`)).text())?.[1]);
    const layer = image.layers.reduce((a, b) => (a.index.chunkCount > b.index.chunkCount ? a : b));
    expect(layer.index.chunkCount).toBeGreaterThan(255);
    const path = `/v1/chunks/${image.registry}/${image.repository}/${layer.digest}?first=0&last=255`;
    const total = (await (await fetch(`${sn.url}${path}`)).arrayBuffer()).byteLength; // now all in the hot chunks
    const before = await served();
    expect(before).toBe(total);
    // a thread's chunk answer is timed as the main thread's are
    expect(await (await fetch(`${sn.metricsUrl}/metrics`)).text()).toMatch(/^shoal_supernode_request_seconds_count\{route="chunks"\} 1$/m);
    const { hostname, port } = new URL(sn.url);
    const socket = connect(Number(port), hostname);
    try {
      socket.pause();
      socket.write(`GET ${path} HTTP/1.1\r\nhost: supernode\r\n\r\n`);
      // unread, the answer cannot be finished (served is counted once its last byte went to the socket)
      await new Promise((r) => setTimeout(r, 2000));
      expect(await served()).toBe(before);
      let got = 0;
      socket.on("data", (d: Buffer) => (got += d.length));
      socket.resume();
      await waitFor("the answer read", async () => (got > total ? true : undefined), 60_000);
      expect(await served()).toBe(before + total);
    } finally {
      socket.destroy();
    }
  });
});
