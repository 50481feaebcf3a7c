// Ordinary (never converted) images mounted lazily through seekable indexes that a supernode builds.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { execFile } from "node:child_process";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachWindows, decodeSeekableIndex, encodeSeekableIndex, LayerIndex, type TarEntry } from "@shoal/blockindex";
import {
  buildRealisticImage, diffTrees, edgeCaseImage, FIRST_WORK_PYTHON, freePort, largeImage, pushLayout, runShoal, snapshotTree, startAgent, startRegistry, startSupernode, umociUnpack, unmountAllUnder, waitFor, writeImageLayout,
  type RunningAgent, type RunningRegistry, type ShoalDaemon, type TreeSnapshot,
} from "@shoal/testkit";
import { callAgent } from "@shoal/agent/client";
import { digestOf } from "@shoal/base";
import { parseReference, RegistryClient } from "@shoal/oci";
import { SnapshotsClient, type SnapshotsCallError } from "@shoal/snapshotter";
import { withMounted } from "@shoal/snapshotter/testsuite";
import type { AgentStatus } from "../src/index.ts";

const run = promisify(execFile);
let registry: RunningRegistry;
let work: string;
let supernode: ShoalDaemon;
let supernodeUrl: string;
let metricsUrl: string;
const agents: RunningAgent[] = [];
const servers: Server[] = [];

/** Push `layers` as an ordinary image (no conversion); the reference and umoci's unpack of it. */
async function pushOrdinary(name: string, layers: Parameters<typeof writeImageLayout>[1]): Promise<{ ref: string; original: TreeSnapshot }> {
  const layout = await writeImageLayout(join(work, `${name}-src`), layers, { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/${name}:v1`);
  const original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, `${name}-unpack`))).rootfs);
  return { ref: `${registry.host}/${name}:v1`, original };
}

async function agent(name: string, supernodes: string, extra: string[] = []): Promise<RunningAgent> {
  const a = await startAgent(join(work, name), ["--plain-http", "--supernode", supernodes, ...extra]);
  agents.push(a);
  return a;
}

async function mount(a: RunningAgent, image: string, name: string): Promise<string> {
  const dir = join(work, `mnt-${name}`);
  await mkdir(dir, { recursive: true });
  await callAgent(a.root, "POST", "/v1/mounts", { image, mountpoint: dir });
  return dir;
}

async function builds(): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^shoal_supernode_seekable_index_builds_total (\d+)/m.exec(text);
  return m ? Number(m[1]) : 0;
}

const status = (a: RunningAgent) => callAgent<AgentStatus>(a.root, "GET", "/v1/status");

/**
 * A supernode that lies: it passes every request to the real one, but
 * answers seekable indexes rewritten by `forge` (and their window packs to
 * match, so that every digest in the forged index holds).
 */
async function lyingSupernode(forge: (index: LayerIndex) => LayerIndex): Promise<string> {
  const port = await freePort();
  const forged = new Map<string, Promise<{ bytes: Buffer; pack: Buffer }>>();
  const forgedFor = (path: string) => {
    let f = forged.get(path);
    if (!f) {
      f = (async () => {
        const index = Buffer.from(await (await fetch(`${supernodeUrl}${path}?kind=seekable`)).arrayBuffer());
        const pack = Buffer.from(await (await fetch(`${supernodeUrl}${path}?kind=seekable-windows`)).arrayBuffer());
        const s = decodeSeekableIndex(index);
        attachWindows(s.index, pack);
        return encodeSeekableIndex({ blob: s.blob, index: forge(s.index) });
      })();
      forged.set(path, f);
    }
    return f;
  };
  const server = createServer((req, res) => {
    void (async () => {
      const [path, query] = (req.url ?? "").split("?");
      if (query === "kind=seekable" || query === "kind=seekable-windows") {
        const f = await forgedFor(path!);
        if (query === "kind=seekable") return void res.end(f.bytes);
        const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? "")!;
        res.writeHead(206);
        return void res.end(f.pack.subarray(Number(m[1]), Number(m[2]) + 1));
      }
      const upstream = await fetch(`${supernodeUrl}${req.url}`, { method: req.method, headers: { ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}), ...(req.headers.range ? { range: req.headers.range } : {}) } });
      const body = Buffer.from(await upstream.arrayBuffer());
      const headers: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (k !== "content-length" && k !== "transfer-encoding" && k !== "content-encoding") headers[k] = v;
      });
      res.writeHead(upstream.status, headers);
      res.end(body);
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  servers.push(server);
  return `http://127.0.0.1:${port}`;
}

/** The same index with `path` made setuid and world-writable, and the window of the span its data starts in overwritten. */
function forgeFile(index: LayerIndex, path: string): LayerIndex {
  const entries = index.entries.map((e): TarEntry => (e.path === path ? { ...e, mode: 0o4777 } : e));
  const e = index.find(path)!;
  const hit = index.chunksForRange(e.dataOffset, 1)!.first;
  const chunks = Array.from({ length: index.chunkCount }, (_, i) => index.chunk(i));
  const checkpoints = chunks.map((c, i) => (i === hit && (c.resume!.window?.length ?? 0) > 0 ? { ...c.resume!, window: Buffer.alloc(c.resume!.window!.length, 0x41) } : c.resume!));
  return new LayerIndex({
    chunkSize: index.chunkSize, uncompressedSize: index.uncompressedSize, entries,
    chunkLengths: chunks.map((c) => c.length), chunkDigests: chunks.map((c) => c.digest),
    spans: { offsets: chunks.map((c) => c.offset), uncompressedOffsets: chunks.map((c) => c.uncompressedOffset), checkpoints },
  });
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-seekable-e2e-"));
  const port = await freePort();
  const mport = await freePort();
  supernode = await startSupernode(join(work, "supernode"), port, ["--registries", registry.host, "--metrics-listen", `127.0.0.1:${mport}`, "--span-spacing", "256KiB"]);
  supernodeUrl = `http://127.0.0.1:${port}`;
  metricsUrl = `http://127.0.0.1:${mport}/metrics`;
}, 120_000);

afterAll(async () => {
  if (work) await unmountAllUnder(work);
  await Promise.allSettled(agents.map((a) => a.stop()));
  await supernode?.stop();
  for (const s of servers) s.close();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("ordinary images, lazily, through seekable indexes", () => {
  let edge: { ref: string; original: TreeSnapshot };

  beforeAll(async () => {
    edge = await pushOrdinary("edge", edgeCaseImage({ smallFileCount: 800 }).layers);
  }, 300_000);

  it("mounts the edge-case image unconverted: the tree equals umoci unpack, each index built once by the supernode", async () => {
    const before = await builds();
    const a = await agent("a", supernodeUrl, ["--prefetch", "off"]);
    const dir = await mount(a, edge.ref, "edge-a");
    expect(diffTrees(edge.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    const s = await status(a);
    const img = s.images.find((i) => i.image === edge.ref)!;
    // four gzip layers and one uncompressed tar layer, each through a seekable index from the supernode
    expect(img.seekable?.map((l) => l.index)).toEqual(Array(5).fill("supernode"));
    expect(await builds()).toBe(before + 5);
    // a second host asks again: the indexes are served from the supernode's cache, not built again
    const b = await agent("b", supernodeUrl, ["--prefetch", "off"]);
    const dirB = await mount(b, edge.ref, "edge-b");
    expect(diffTrees(edge.original, await snapshotTree(dirB), { layeredHardlinks: true })).toEqual([]);
    expect(await builds()).toBe(before + 5);
  });

  it("builds an index once however many hosts ask at the same moment, and reads one file without the rest of the layer", async () => {
    const big = await pushOrdinary("big", largeImage({ totalBytes: 24 << 20, seed: 7, layers: 1 }).layers);
    const before = await builds();
    const hosts = await Promise.all(["c1", "c2", "c3"].map((n) => agent(n, supernodeUrl, ["--prefetch", "off"])));
    const dirs = await Promise.all(hosts.map((h, i) => mount(h, big.ref, `big-${i}`)));
    expect(await builds()).toBe(before + 1);
    const [path] = [...big.original].find(([, n]) => n.type === "file" && (n.size ?? 0) > 0 && (n.size ?? 0) < 100_000)!;
    const bytes = await readFile(join(dirs[0]!, path));
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(big.original.get(path)!.sha256);
    const s = await status(hosts[0]!);
    const fetched = Object.values(s.sources).reduce((n, x) => n + (x?.bytes ?? 0), 0);
    expect(fetched).toBeGreaterThan(0);
    expect(fetched).toBeLessThan((24 << 20) / 4);
  });

  it("shoal cat of one small file of an unconverted image fetches under 5% of it, the index from the supernode", async () => {
    const img = largeImage({ totalBytes: 24 << 20, seed: 11, layers: 1 });
    const big = await pushOrdinary("cat", img.layers);
    const res = await runShoal(["cat", "--plain-http", "--stats", "--supernode", supernodeUrl, big.ref, img.smallFile.path]);
    expect(res.code, res.stderr).toBe(0);
    expect(createHash("sha256").update(res.stdout).digest("hex")).toBe(img.smallFile.sha256.replace("sha256:", ""));
    const m = /fetched .* \(([0-9.]+)% of the image/.exec(res.stderr);
    expect(m, res.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(5);
  });

  it("a preheat of an unconverted image builds its indexes; four hosts then read it all while the registry serves it about once", async () => {
    const img = largeImage({ totalBytes: 16 << 20, seed: 13, layers: 2 });
    const pre = await pushOrdinary("preheated", img.layers);
    const layout = await (await fetch(`${registry.url}/v2/preheated/manifests/v1`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" } })).json() as { layers: Array<{ size: number }> };
    const imageBytes = layout.layers.reduce((n, l) => n + l.size, 0);
    await registry.settle();
    await registry.resetStats();
    const before = await builds();
    const res = await runShoal(["preheat", "--supernode", supernodeUrl, pre.ref]);
    expect(res.code, res.stderr).toBe(0);
    expect(await builds()).toBe(before + 2);
    const hosts = await Promise.all(["p1", "p2", "p3", "p4"].map((n) => agent(n, supernodeUrl, ["--prefetch", "off", "--origin-fallback", "false"])));
    const dirs = await Promise.all(hosts.map((h, i) => mount(h, pre.ref, `preheated-${i}`)));
    for (const dir of dirs) expect(diffTrees(pre.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    await registry.settle();
    expect(registry.stats().blobBytes).toBeLessThanOrEqual(imageBytes * 1.1);
    expect(await builds()).toBe(before + 2);
  });

  it("the realistic Debian image pushed unconverted: the lazy tree equals umoci unpack, python3 runs, and shoal cat of one file fetches under 5%", async () => {
    const image = await buildRealisticImage(fileURLToPath(new URL("../../.cache/realistic-image", import.meta.url)));
    const ref = `${registry.host}/realistic:v1`;
    await pushLayout(image.layoutDir, image.tag, ref);
    const want = await snapshotTree((await umociUnpack(image.layoutDir, image.tag, join(work, "bundle-realistic"))).rootfs);
    await rm(join(work, "bundle-realistic"), { recursive: true, force: true });
    const a = await agent("realistic", supernodeUrl, ["--prefetch", "off"]);
    const dir = await mount(a, ref, "realistic");
    expect(diffTrees(want, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    const { stdout } = await run("chroot", [dir, "/usr/bin/python3", "-c", `${FIRST_WORK_PYTHON}; print("imported")`]);
    expect(stdout.trim()).toBe("imported");
    const res = await runShoal(["cat", "--plain-http", "--stats", "--supernode", supernodeUrl, ref, "/etc/os-release"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.toString()).toMatch(/Debian GNU\/Linux 12/);
    const m = /fetched .* \(([0-9.]+)% of the image/.exec(res.stderr);
    expect(Number(m![1])).toBeLessThan(5);
  });

  it("the snapshotter takes an ordinary layer that CRI's labels name as a remote snapshot, read through its seekable index", async () => {
    const layout = await writeImageLayout(join(work, "one-src"), largeImage({ totalBytes: 4 << 20, seed: 9, layers: 1 }).layers, { tag: "v1" });
    await pushLayout(layout.dir, "v1", `${registry.host}/one:v1`);
    const original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "one-unpack"))).rootfs);
    const a = await agent("snap", supernodeUrl, ["--prefetch", "off"]);
    const api = new SnapshotsClient({ socket: join(a.root, "snapshotter.sock") });
    try {
      const chain = layout.diffIds[0]!;
      const labels = {
        "containerd.io/snapshot.ref": chain,
        "containerd.io/snapshot/cri.image-ref": `${registry.host}/one:v1`,
        "containerd.io/snapshot/cri.layer-digest": layout.layers[0]!.digest,
        "containerd.io/snapshot/cri.manifest-digest": layout.manifestDigest,
      };
      // the remote snapshot protocol: the target exists at once, nothing for containerd to fill
      // containerd names the backend snapshot after the target (its metadata layer does), so the key is the chain ID
      const answer = await api.prepare(chain, "", labels).then(() => "accepted", (e: unknown) => (e as SnapshotsCallError).status);
      expect(answer).toBe("ALREADY_EXISTS");
      expect((await api.stat(chain)).kind).toBe("committed");
      const tree = await withMounted(work, await api.view("one-view", chain), (dir) => snapshotTree(dir));
      await api.remove("one-view");
      expect(diffTrees(original, tree, { layeredHardlinks: true })).toEqual([]);
      const st = await status(a);
      expect(st.images.find((i) => i.image.includes("/one"))?.seekable?.map((l) => l.index)).toEqual(["supernode"]);
    } finally {
      api.close();
    }
  });

  it("refuses to mount an image whose config's diff_ids do not match its layers' uncompressed streams", async () => {
    // the edge image with its config's first diffID changed: a new config blob and manifest under another tag
    const client = new RegistryClient({}, { registry: registry.host, plainHttp: true });
    try {
      const { manifest, bytes: manifestBytes, mediaType } = await client.resolveImage(parseReference(edge.ref));
      const repo = parseReference(edge.ref).repository;
      const config = JSON.parse(Buffer.from(await client.getBlob(repo, manifest.config.digest)).toString()) as { rootfs: { diff_ids: string[] } };
      config.rootfs.diff_ids[0] = `sha256:${"e".repeat(64)}`;
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = digestOf(configBytes);
      await client.pushBlob(repo, configDigest, configBytes.length, configBytes);
      const m = JSON.parse(Buffer.from(manifestBytes).toString()) as { config: { digest: string; size: number } };
      m.config = { ...m.config, digest: configDigest, size: configBytes.length };
      await client.putManifest(repo, "baddiff", Buffer.from(JSON.stringify(m)), mediaType);
    } finally {
      await client.close();
    }
    const a = await agent("diffids", supernodeUrl);
    const dir = join(work, "mnt-baddiff");
    await mkdir(dir, { recursive: true });
    const r = await runShoal(["mount", "--root", a.root, edge.ref.replace(/:v1$/, ":baddiff"), dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toMatch(/layer 1 .*rootfs\.diff_ids.*\[SHOAL_ERR_DIGEST_MISMATCH\]/);
    // the right config mounts (the check passes)
    await mount(a, edge.ref, "edge-diffids");
  });

  it("checks the index against the blob once the whole layer streamed in", async () => {
    const a = await agent("audited", supernodeUrl);
    await mount(a, edge.ref, "edge-audited");
    const s = await waitFor("every seekable layer audited", async () => {
      const st = await status(a);
      const img = st.images.find((i) => i.image === edge.ref);
      return img?.seekable?.every((l) => l.audit !== "pending") ? img : undefined;
    });
    expect(s.seekable!.map((l) => l.audit)).toEqual(Array(5).fill("passed"));
  });

  it("a supernode serving a forged index is found out: reads of the layer fail once the layer is local, and say why", async () => {
    // the many-files layer: a file made setuid and world-writable, and the window of the span holding its data
    // overwritten; the forged index is well formed and every span digest in it holds
    const target = "many/d000/f00002";
    const liar = await lyingSupernode((index) => (index.find(target) ? forgeFile(index, target) : index));
    const a = await agent("victim", liar);
    const dir = await mount(a, edge.ref, "edge-victim");
    const s = await waitFor("every seekable layer audited", async () => {
      const st = await status(a);
      const img = st.images.find((i) => i.image === edge.ref);
      return img?.seekable?.every((l) => l.audit !== "pending") ? img : undefined;
    });
    const audits = s.seekable!.map((l) => l.audit);
    expect(s.seekable!.map((l) => l.index)).toEqual(Array(5).fill("supernode"));
    expect(audits.filter((x) => x.startsWith("failed"))).toHaveLength(1);
    expect(audits.find((x) => x.startsWith("failed"))).toMatch(/forged or wrong: the blob gives a different index/);
    await expect(readFile(join(dir, target))).rejects.toThrow(/EIO|input\/output/i);
    const text = await runShoal(["status", "--root", a.root, "--json"]);
    expect(text.stdout.toString()).toMatch(/forged or wrong/);
  });

  it("a forged span is refused: the reader gets the true bytes from elsewhere", async () => {
    // spans from the supernode's block cache, flipped in flight: every span fails its digest and comes from the origin
    const port = await freePort();
    const server = createServer((req, res) => {
      void (async () => {
        const upstream = await fetch(`${supernodeUrl}${req.url}`, { headers: req.headers.range ? { range: req.headers.range } : {} });
        const body = Buffer.from(await upstream.arrayBuffer());
        if (req.url?.startsWith("/v1/blobs/") && body.length > 0) body[body.length >> 1] = body[body.length >> 1]! ^ 0xff;
        const headers: Record<string, string> = {};
        upstream.headers.forEach((v, k) => {
          if (k !== "content-length" && k !== "transfer-encoding") headers[k] = v;
        });
        res.writeHead(upstream.status, headers);
        res.end(body);
      })().catch(() => res.destroy());
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    servers.push(server);
    const a = await agent("flipped", `http://127.0.0.1:${port}`, ["--prefetch", "off"]);
    const dir = await mount(a, edge.ref, "edge-flipped");
    expect(diffTrees(edge.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    const st = await status(a);
    expect(st.sources.origin?.bytes).toBeGreaterThan(0);
  });
});
