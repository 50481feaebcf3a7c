import type { ShoalError } from "@shoal/base";
import { access } from "node:fs/promises";
import { join } from "node:path";
import { chunkPaths } from "@shoal/store";
import { freePort, type RunningRegistry } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkDigest } from "@shoal/blockindex";
import { ownerOf, preheat, type PreheatProgress } from "@shoal/swarm";
import { blobChunks, Cleanup, fetchChunks, registryWithImage, type TestImage } from "./harness.ts";

const exists = (p: string) => access(p).then(() => true, () => false);

describe("preheat over two supernodes", () => {
  const cleanup = new Cleanup();
  let registry: RunningRegistry;
  let image: TestImage;

  beforeAll(async () => {
    ({ registry, image } = await registryWithImage(cleanup, "fleet/web", 8 * 1024 * 1024, 64 * 1024));
  });
  afterAll(() => cleanup.run());

  it("puts every chunk in exactly its owner's cache, once from the registry", async () => {
    const ports = [await freePort(), await freePort()];
    const peers = ports.map((p) => `http://127.0.0.1:${p}`);
    const roots = [await cleanup.tempDir("shoal-sn-p0-"), await cleanup.tempDir("shoal-sn-p1-")];
    const nodes = await Promise.all(
      ports.map((port, i) => cleanup.supernode({ root: roots[i]!, listen: { host: "127.0.0.1", port }, peers, self: peers[i]! })),
    );
    expect(nodes.map((n) => n.url)).toEqual(peers);
    await registry.settle();
    await registry.resetStats();
    const seen: PreheatProgress[] = [];
    const final = await preheat({ supernodes: peers, image: image.ref, pollMs: 50, onProgress: (p) => seen.push(p) });
    const distinct = new Set(image.layers.flatMap((l) => Array.from({ length: l.index.chunkCount }, (_, i) => chunkDigest(l.index.chunk(i)))));
    expect(final.chunksDone).toBe(final.chunksTotal);
    expect(final.chunksTotal).toBe(distinct.size);
    expect(final.bytesDone).toBe(final.bytesTotal);
    expect(final.supernodesDone).toBe(2);
    expect(seen.length).toBeGreaterThan(0);
    await registry.settle();
    const preheatBytes = registry.stats().blobBytes;
    expect(preheatBytes).toBeLessThanOrEqual(image.bytes * 1.1);
    expect(preheatBytes).toBeGreaterThanOrEqual(final.bytesTotal);

    // Each chunk is in its owner's store and only there; both own some.
    const owned = [0, 0];
    for (const l of image.layers) {
      for (let i = 0; i < l.index.chunkCount; i++) {
        const d = chunkDigest(l.index.chunk(i));
        const owner = peers.indexOf(ownerOf(d, peers)!);
        owned[owner]!++;
        for (const k of [0, 1]) {
          const has = await exists(chunkPaths(join(roots[k]!, "store"), d.slice("sha256:".length)).z);
          expect(has, `chunk ${i} of ${l.digest} on supernode ${k} (owner ${owner})`).toBe(k === owner);
        }
      }
    }
    expect(owned[0]).toBeGreaterThan(0);
    expect(owned[1]).toBeGreaterThan(0);

    // Fetching every chunk through its owner costs the registry nothing more.
    await registry.resetStats();
    for (const l of image.layers) {
      for (let i = 0; i < l.index.chunkCount; i++) {
        const owner = ownerOf(chunkDigest(l.index.chunk(i)), peers)!;
        const res = await fetchChunks(owner, image, l.digest, i, i);
        expect(Buffer.from(await res.arrayBuffer()).equals(blobChunks(l, i, i))).toBe(true);
      }
    }
    await registry.settle();
    expect(registry.stats().blobBytes).toBe(0);
  });

  it("refuses a preheat past --max-preheats running jobs with 429, and takes one again when a job has finished", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-p3-"), maxPreheats: 1 });
    const post = () => fetch(`${sn.url}/v1/preheat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: image.ref }) });
    // a frozen registry keeps the first job running
    registry.freeze();
    let id: string;
    try {
      const first = await post();
      expect(first.status).toBe(202);
      ({ id } = (await first.json()) as { id: string });
      const second = await post();
      expect([second.status, ((await second.json()) as { code: string }).code]).toEqual([429, "SHOAL_ERR_TOO_MANY_JOBS"]);
    } finally {
      registry.thaw();
    }
    for (;;) {
      const st = (await (await fetch(`${sn.url}/v1/preheat/${id}`)).json()) as { state: string };
      if (st.state !== "running") break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect((await post()).status).toBe(202);
  });

  it("preheats a non-lazy image by building its seekable indexes; reports failed jobs with a typed error on the client", async () => {
    const sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-p2-") });
    // an ordinary image: each layer's owner (this supernode, alone) builds its index, one read of the blob each
    const done = await preheat({ supernodes: [sn.url], image: image.original, pollMs: 20 });
    expect(done.chunksTotal).toBeGreaterThan(0);
    expect(done.chunksDone).toBe(done.chunksTotal);
    const bad = await preheat({ supernodes: [sn.url], image: "NOT A REF" }).catch((e: unknown) => e);
    expect((bad as ShoalError).code).toBe("SHOAL_ERR_PREHEAT_FAILED");
    expect((bad as Error).message).toContain("SHOAL_ERR_BAD_REQUEST");
    const missing = await preheat({ supernodes: [sn.url], image: `${image.registry}/fleet/web:nope`, pollMs: 20 }).catch((e: unknown) => e);
    expect((missing as Error).message).toContain("SHOAL_ERR_REGISTRY_NOT_FOUND");
    const unknown = await fetch(`${sn.url}/v1/preheat/nope`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { code: string }).code).toBe("SHOAL_ERR_PREHEAT_NOT_FOUND");
    const down = await preheat({ supernodes: ["http://127.0.0.1:1"], image: image.ref }).catch((e: unknown) => e);
    expect((down as ShoalError).code).toBe("SHOAL_ERR_SUPERNODE_UNAVAILABLE");
    expect((await fetch(`${sn.url}/v1/health`)).status).toBe(200);
  });
});
