import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MergedTree, parseLazyAnnotations } from "@shoal/blockindex";
import { parseReference, RegistryClient, RegistryClientPool, type ImageManifest } from "@shoal/oci";
import {
  diffTrees, edgeCaseImage, largeImage, pullLayout, pushLayout, snapshotTree, startRegistry, umociUnpack, writeImageLayout, type EdgeCaseImage, type LayoutImage, type RunningRegistry, type TreeSnapshot, runShoal,
} from "@shoal/testkit";
import { Fetcher, openImage, RegistryIndexSource, RegistrySource } from "@shoal/fetch";
import { MemoryChunkCache } from "@shoal/fetch/testsuite";
import { pino } from "pino";

const CHUNK = 64 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("shoal convert / ls / cat against the Debian registry, umoci and skopeo", () => {
  let registry: RegistryRunning;
  let work: string;
  let fixture: EdgeCaseImage;
  let layout: LayoutImage;
  let original: TreeSnapshot;
  let converted: TreeSnapshot;
  let lazyDigest: string;
  let client: RegistryClient;
  type RegistryRunning = RunningRegistry;

  beforeAll(async () => {
    registry = await startRegistry();
    work = await mkdtemp(join(tmpdir(), "shoal-e2e-"));
    fixture = edgeCaseImage({ chunkSize: CHUNK, smallFileCount: 2000 });
    layout = await writeImageLayout(join(work, "src"), fixture.layers, { tag: "v1" });
    await pushLayout(layout.dir, "v1", `${registry.host}/edge:v1`);
    const res = await runShoal(["convert", "--plain-http", "--chunk-size", String(CHUNK), `${registry.host}/edge:v1`, `${registry.host}/edge:v1-lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
    expect(res.stderr).toContain("5 layers converted");
    expect(res.code, res.stderr).toBe(0);
    lazyDigest = res.stdout.toString().trim().split("\n").at(-1)!;
    client = new RegistryClient({}, { registry: registry.host, plainHttp: true });
    original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "unpack-src"))).rootfs);
    await pullLayout(`${registry.host}/edge:v1-lazy`, join(work, "lazy"), { tag: "v1-lazy" });
    converted = await snapshotTree((await umociUnpack(join(work, "lazy"), "v1-lazy", join(work, "unpack-lazy"))).rootfs);
  }, 600_000);

  afterAll(async () => {
    await client?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it("prints the digest of the pushed manifest last, and keeps config and diffIDs", async () => {
    expect(lazyDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const m = await client.getManifest({ repository: "edge", tag: "v1-lazy" });
    expect(m.digest).toBe(lazyDigest);
    const manifest = m.manifest as ImageManifest;
    expect(manifest.config.digest).toBe(layout.configDigest);
    expect(manifest.layers).toHaveLength(layout.layers.length);
    for (const [i, l] of manifest.layers.entries()) {
      expect(l.digest).not.toBe(layout.layers[i]!.digest);
      expect(l.mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
      const info = parseLazyAnnotations(l.annotations);
      expect(info?.chunkSize).toBe(CHUNK);
      expect(info?.sourceDigest).toBe(layout.layers[i]!.digest);
    }
    const config = JSON.parse(Buffer.from(await client.getBlob("edge", manifest.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
    expect(config.rootfs.diff_ids).toEqual(layout.diffIds);
  });

  it("umoci unpack of the converted image (pulled by skopeo) equals that of the original", () => {
    expect(original.size).toBeGreaterThan(2000);
    expect(diffTrees(original, converted)).toEqual([]);
    expect(diffTrees(fixture.expected, converted)).toEqual([]);
  });

  it("reads every regular file lazily with exactly the bytes umoci wrote", async () => {
    // through the read path the agent uses: indexes, then verified chunks by range requests
    const clients = new RegistryClientPool({}, { plainHttp: true });
    const img = await openImage(clients, parseReference(`${registry.host}/edge:v1-lazy`), [new RegistryIndexSource({ clients })]);
    const tree = MergedTree.build(img.layers.map((l) => l.index));
    const fetcher = new Fetcher({ cache: new MemoryChunkCache(), sources: [new RegistrySource({ clients })], logger: pino({ level: "silent" }) });
    let files = 0;
    for (const [path, node] of original) {
      if (node.type !== "file") continue;
      const m = tree.resolve(path);
      const e = m.inode.entry;
      const bytes = await fetcher.read(img.layers[m.inode.layer]!, e.dataOffset, e.size);
      expect(sha(bytes), path).toBe(node.sha256);
      files++;
    }
    expect(files).toBeGreaterThan(2000);
    await clients.close();
  });

  it("shoal cat prints the same bytes for boundary files, long names and hardlinks", async () => {
    const picks = [...original].filter(([p, n]) => n.type === "file" && (p.length > 100 || p.includes("bound") || (n.hardlinks?.length ?? 0) > 1)).slice(0, 12);
    expect(picks.length).toBeGreaterThan(5);
    for (const [path, node] of picks) {
      const res = await runShoal(["cat", "--plain-http", `${registry.host}/edge:v1-lazy`, `/${path}`]);
      expect(res.code, res.stderr).toBe(0);
      expect(sha(res.stdout), path).toBe(node.sha256);
    }
  });

  it("shoal ls lists the merged view; whited-out and missing paths are errors", async () => {
    const ls = await runShoal(["ls", "--plain-http", `${registry.host}/edge:v1-lazy`, "/"]);
    expect(ls.code, ls.stderr).toBe(0);
    const top = [...original.keys()].filter((p) => p !== "." && !p.includes("/"));
    expect(ls.stdout.toString().trim().split("\n").map((l) => l.split(" ").at(-1)!.replace(/ -> .*/, ""))).toEqual(expect.arrayContaining(top));
    for (const gone of fixture.checks.absent.slice(0, 3)) {
      const res = await runShoal(["cat", "--plain-http", `${registry.host}/edge:v1-lazy`, `/${gone}`]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/SHOAL_ERR_NOT_FOUND/);
    }
  });

  it("reconverting reuses every layer and gives the same digest", async () => {
    const res = await runShoal(["convert", "--plain-http", "--chunk-size", String(CHUNK), `${registry.host}/edge:v1`, `${registry.host}/edge:v1-again`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("0 layers converted, 5 reused");
    expect(res.stdout.toString().trim()).toBe(lazyDigest);
    const fresh = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", String(CHUNK), `${registry.host}/edge:v1`, `${registry.host}/edge:v1-fresh`]);
    expect(fresh.stderr).toContain("5 layers converted");
    expect(fresh.stdout.toString().trim()).toBe(lazyDigest); // deterministic
  });

  it("converting into another repository of the same registry mounts blobs it already has there, downloading none", async () => {
    await registry.settle();
    await registry.resetStats();
    const res = await runShoal(["convert", "--plain-http", "--chunk-size", String(CHUNK), `${registry.host}/edge:v1`, `${registry.host}/edge-copy:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.toString().trim().split("\n").at(-1)).toBe(lazyDigest);
    await registry.settle();
    const reqs = registry.stats().requests;
    // config and every (cached) lazy layer were mounted from edge, not downloaded and pushed again
    expect(reqs.filter((r) => r.method === "GET" && r.path.includes("/blobs/"))).toEqual([]);
    expect(reqs.filter((r) => r.method === "POST" && r.path.includes("mount=") && r.status === 201)).toHaveLength(1 + layout.layers.length);
  });

  it("refuses to read an image that was not converted, naming shoal convert", async () => {
    const res = await runShoal(["ls", "--plain-http", `${registry.host}/edge:v1`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/SHOAL_ERR_NOT_CONVERTED/);
    expect(res.stderr).toMatch(/shoal convert/);
  });
});

describe("lazy reads fetch little", () => {
  it("shoal cat of one small file of a large image fetches under 5% of its compressed bytes", async () => {
    const registry = await startRegistry();
    const work = await mkdtemp(join(tmpdir(), "shoal-lazy-"));
    try {
      const img = largeImage({ totalBytes: 48 * 1024 * 1024 });
      const layout = await writeImageLayout(join(work, "src"), img.layers, { tag: "v1" });
      await pushLayout(layout.dir, "v1", `${registry.host}/big:v1`);
      const conv = await runShoal(["convert", "--plain-http", `${registry.host}/big:v1`, `${registry.host}/big:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
      expect(conv.code, conv.stderr).toBe(0);
      const client = new RegistryClient({}, { registry: registry.host, plainHttp: true });
      const m = (await client.resolveImage(parseReference(`${registry.host}/big:lazy`))).manifest;
      await client.close();
      const imageBytes = m.layers.reduce((s, l) => s + l.size, 0);
      await registry.settle();
      await registry.resetStats();
      const res = await runShoal(["cat", "--plain-http", "--stats", `${registry.host}/big:lazy`, `/${img.smallFile.path}`]);
      expect(res.code, res.stderr).toBe(0);
      expect(sha(res.stdout)).toBe(img.smallFile.sha256.replace(/^sha256:/, ""));
      await registry.settle();
      const served = registry.stats().blobBytes;
      expect(served).toBeGreaterThan(0);
      expect(served / imageBytes).toBeLessThan(0.05);
    } finally {
      await registry.stop();
      await rm(work, { recursive: true, force: true });
    }
  }, 300_000);
});
