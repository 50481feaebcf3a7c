import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { ChunkPeer, formatSwarmKey, generateSwarmKey, readSwarmKey } from "@shoal/p2p";
import { sealForTest, testPeerIdentity } from "@shoal/swarm/testsuite";
import { parseReference, RegistryClient } from "@shoal/oci";
import {
  diffTrees, freePort, largeImage, pushLayout, snapshotTree, startRegistry, umociUnpack, writeImageLayout, unmountAllUnder, type RunningRegistry, type TreeSnapshot, runShoal, startSupernode as startSupernodeProcess, startAgent, type RunningAgent,
} from "@shoal/testkit";
import { callAgent } from "@shoal/agent/client";
import type { AgentStatus } from "../src/index.ts";


let registry: RunningRegistry;
let work: string;
let keyFile: string;
const supernodes: Array<{ url: string; child: ChildProcess }> = [];
const agents: RunningAgent[] = [];

/** A supernode process in the swarm (its tracker takes only members' announces), unless `extra` says otherwise. */
async function startSupernode(name: string, port: number, all: string[], extra: string[] = ["--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0"]): Promise<{ url: string; child: ChildProcess }> {
  const sn = await startSupernodeProcess(join(work, name), port, ["--supernodes", all.join(","), "--registries", registry.host, "--log-level", "warn", "--tracker-reporter-age", "0s", ...extra]);
  return { url: `http://127.0.0.1:${port}`, child: sn.child };
}

async function prepare(name: string, seed: number): Promise<{ lazy: string; original: TreeSnapshot; imageBytes: number }> {
  const img = largeImage({ totalBytes: 12 << 20, seed, layers: 2 });
  const layout = await writeImageLayout(join(work, `${name}-src`), img.layers, { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/${name}:v1`);
  const conv = await runShoal(["convert", "--plain-http", "--no-cache", `${registry.host}/${name}:v1`, `${registry.host}/${name}:lazy`]);
  expect(conv.code, conv.stderr).toBe(0);
  const original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, `${name}-unpack`))).rootfs);
  const c = new RegistryClient({}, { registry: registry.host, plainHttp: true });
  const m = (await c.resolveImage(parseReference(`${registry.host}/${name}:lazy`))).manifest;
  await c.close();
  return { lazy: `${registry.host}/${name}:lazy`, original, imageBytes: m.layers.reduce((s, l) => s + l.size, 0) };
}

async function agent(name: string, extra: string[] = []): Promise<RunningAgent> {
  const a = await startAgent(join(work, name), [
    "--plain-http", "--prefetch", "off", "--supernode", supernodes.map((s) => s.url).join(","),
    "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", ...extra,
  ]);
  agents.push(a);
  return a;
}

async function mountAndRead(a: RunningAgent, image: string, original: TreeSnapshot, name: string, midway?: () => Promise<void>): Promise<AgentStatus> {
  const dir = join(work, `mnt-${name}`);
  await mkdir(dir, { recursive: true });
  await callAgent(a.root, "POST", "/v1/mounts", { image, mountpoint: dir });
  if (midway) {
    const { readFile } = await import("node:fs/promises");
    const files = [...original].filter(([, n]) => n.type === "file").slice(0, 3);
    for (const [p] of files) await readFile(join(dir, p));
    await midway();
  }
  expect(diffTrees(original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
  return callAgent<AgentStatus>(a.root, "GET", "/v1/status");
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-swarm-"));
  keyFile = join(work, "swarm.key");
  await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((p) => `http://127.0.0.1:${p}`);
  for (const [i, p] of ports.entries()) supernodes.push(await startSupernode(`supernode-${i}`, p, urls));
}, 120_000);

afterAll(async () => {
  for (const a of agents) await a.stop().catch(() => {});
  for (const s of supernodes) if (s.child.exitCode === null) s.child.kill("SIGKILL");
  if (work) await unmountAllUnder(work);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("supernodes, preheat and the peer swarm", () => {
  it("an image nobody converted: a second host gets spans from the first over the swarm", async () => {
    const img = largeImage({ totalBytes: 12 << 20, seed: 31, layers: 2 });
    const layout = await writeImageLayout(join(work, "plain-src"), img.layers, { tag: "v1" });
    await pushLayout(layout.dir, "v1", `${registry.host}/plain:v1`);
    const original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "plain-unpack"))).rootfs);
    const first = await agent("plain-1");
    await mountAndRead(first, `${registry.host}/plain:v1`, original, "plain-1");
    const second = await agent("plain-2");
    const s = await mountAndRead(second, `${registry.host}/plain:v1`, original, "plain-2");
    expect(s.images.find((i) => i.image === `${registry.host}/plain:v1`)?.seekable?.map((l) => l.index)).toEqual(["supernode", "supernode"]);
    expect(s.sources.peer?.bytes ?? 0).toBeGreaterThan(0);
  });

  it("after a preheat, agents read the whole image while the registry serves it about once", async () => {
    const img = await prepare("peak", 21);
    await registry.settle();
    await registry.resetStats();
    const pre = await runShoal(["preheat", "--supernode", supernodes.map((s) => s.url).join(","), img.lazy]);
    expect(pre.code, pre.stderr).toBe(0);
    expect(pre.stderr).toMatch(/done/);
    await registry.settle();
    const blobRequestsAfterPreheat = registry.stats().blobRequests;
    const metricsPort = await freePort();
    for (const name of ["a1", "a2", "a3"]) {
      const a = await agent(name, ["--origin-fallback", "false", ...(name === "a3" ? ["--metrics-listen", `127.0.0.1:${metricsPort}`] : [])]);
      const s = await mountAndRead(a, img.lazy, img.original, name);
      expect(s.sources.origin).toBeUndefined();
    }
    await registry.settle();
    // layer bytes and indexes once in all (by the supernodes): the agents asked the registry for no blob bytes at all
    expect(registry.stats().blobBytes).toBeLessThanOrEqual(img.imageBytes * 1.1);
    expect(registry.stats().blobRequests).toBe(blobRequestsAfterPreheat);
    const peerBytes = await Promise.all(agents.slice(1).map(async (a) => (await callAgent<AgentStatus>(a.root, "GET", "/v1/status")).sources.peer?.bytes ?? 0));
    expect(peerBytes.some((b) => b > 0)).toBe(true); // the later agents got chunks from the earlier ones
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toMatch(/shoal_fetch_bytes_total\{source="(peer|supernode)"\} [1-9]/);
    expect(text).toMatch(/shoal_peers_connected [0-9]/);
    expect(text).toMatch(/shoal_upload_bytes_total [0-9]/);
  });

  it("announces which chunks it holds: the tracker lists a peer only for those, and whole layers once read", async () => {
    const img = await prepare("bitmap", 25);
    const c = new RegistryClient({}, { registry: registry.host, plainHttp: true });
    const layers = (await c.resolveImage(parseReference(img.lazy))).manifest.layers.map((l) => l.digest);
    await c.close();
    const a = await agent("bitmap");
    const peerId = (await callAgent<AgentStatus>(a.root, "GET", "/v1/status")).p2p!.peerId;
    const holders = async (layer: string, chunk?: number) =>
      (await (await fetch(`${supernodes[0]!.url}/v1/peers?layer=${layer}${chunk === undefined ? "" : `&chunk=${chunk}`}`)).json()) as Array<{ peerId: string; chunks?: string }>;
    const entry = async (layer: string) => (await holders(layer)).find((p) => p.peerId === peerId);
    const dir = join(work, "mnt-bitmap");
    await mkdir(dir);
    await callAgent(a.root, "POST", "/v1/mounts", { image: img.lazy, mountpoint: dir });
    const { readFile } = await import("node:fs/promises");
    const file = [...img.original].find(([, n]) => n.type === "file" && (n.size ?? 0) > 0)!;
    await readFile(join(dir, file[0]));
    // the agent announces within a second of storing chunks
    let partial: { layer: string; bits: Buffer } | undefined;
    for (let k = 0; k < 40 && !partial; k++) {
      await new Promise((r) => setTimeout(r, 100));
      for (const layer of layers) {
        const e = await entry(layer);
        if (e?.chunks) partial = { layer, bits: Buffer.from(e.chunks, "base64") };
      }
    }
    expect(partial).toBeDefined();
    const held = (i: number) => (partial!.bits[i >> 3]! & (1 << (i & 7))) !== 0;
    const heldIdx = Array.from({ length: partial!.bits.length * 8 }, (_, i) => i).filter(held);
    const missing = Array.from({ length: partial!.bits.length * 8 }, (_, i) => i).find((i) => !held(i))!;
    expect(heldIdx.length).toBeGreaterThan(0);
    expect((await holders(partial!.layer, heldIdx[0])).map((p) => p.peerId)).toContain(peerId);
    expect((await holders(partial!.layer, missing)).map((p) => p.peerId)).not.toContain(peerId);
    // after reading everything, each layer is announced whole (no bitmap)
    expect(diffTrees(img.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    let whole = false;
    for (let k = 0; k < 40 && !whole; k++) {
      await new Promise((r) => setTimeout(r, 100));
      const es = await Promise.all(layers.map(entry));
      whole = es.every((e) => e !== undefined && e.chunks === undefined);
    }
    expect(whole).toBe(true);
  });

  it("a supernode started with the swarm key serves its cache to agents over libp2p too", async () => {
    const img = await prepare("seed", 26);
    const port = await freePort();
    const seed = await startSupernode("supernode-seed", port, [`http://127.0.0.1:${port}`]);
    try {
      const health = (await (await fetch(`${seed.url}/v1/health`)).json()) as { peerId?: string };
      expect(health.peerId).toMatch(/^12D3Koo/);
      const pre = await runShoal(["preheat", "--supernode", seed.url, img.lazy]);
      expect(pre.code, pre.stderr).toBe(0);
      const a = await startAgent(join(work, "seeded"), [
        "--plain-http", "--prefetch", "off", "--supernode", seed.url, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--origin-fallback", "false",
      ]);
      agents.push(a);
      const s = await mountAndRead(a, img.lazy, img.original, "seeded");
      // no other agent holds this image: the peer bytes came from the supernode's chunk peer
      expect(s.sources.peer?.bytes ?? 0).toBeGreaterThan(0);
      expect(s.sources.origin).toBeUndefined();
      await a.stop();
    } finally {
      seed.child.kill("SIGTERM");
    }
  });

  it("detects and drops a peer that serves corrupt chunks; no file is corrupted", async () => {
    const img = await prepare("rogue", 22);
    const key = await readSwarmKey(keyFile);
    // a member of the swarm (it has the key) that serves garbage
    const rogueKey = await generateKeyPair("Ed25519");
    const rogue = new ChunkPeer({ provider: { readCompressed: async () => randomBytes(4096) } }, { swarmKey: key, listen: ["/ip4/127.0.0.1/tcp/0"], privateKey: rogueKey });
    await rogue.start();
    const post = async (url: string, body: unknown) => (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })).json();
    try {
      const c = new RegistryClient({}, { registry: registry.host, plainHttp: true });
      const layers = (await c.resolveImage(parseReference(img.lazy))).manifest.layers.map((l) => l.digest);
      await c.close();
      const signer = { peerId: rogue.peerId, sign: (d: Uint8Array) => rogueKey.sign(d) };
      for (const s of supernodes) {
        expect(await post(`${s.url}/v1/announce`, await sealForTest("announce", { peerId: rogue.peerId, addrs: rogue.addrs, layers }, signer, key.psk))).toHaveProperty("ttlMs");
      }
      const victim = await agent("victim");
      const dir = join(work, "mnt-victim");
      await mkdir(dir);
      await callAgent(victim.root, "POST", "/v1/mounts", { image: img.lazy, mountpoint: dir });
      await new Promise((r) => setTimeout(r, 300)); // let the first peer list arrive
      expect(diffTrees(img.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
      const s = await callAgent<AgentStatus>(victim.root, "GET", "/v1/status");
      expect(s.p2p?.dropped).toContain(rogue.peerId);
      expect(rogue.stats().uploadsServed).toBeGreaterThan(0);
      // and reported it to the supernodes
      const witness = testPeerIdentity();
      // a witness that announced (the supernodes here count reports of members of any age)
      for (const sn of supernodes) await post(`${sn.url}/v1/announce`, await sealForTest("announce", { peerId: witness.peerId, addrs: ["w"], layers }, witness, key.psk));
      const reports = await Promise.all(supernodes.map(async (sn) =>
        (await post(`${sn.url}/v1/report`, await sealForTest("report", { reporter: witness.peerId, peerId: rogue.peerId, chunk: `sha256:${"b".repeat(64)}` }, witness, key.psk))) as { banned: boolean }));
      // a second, distinct reporter bans it: the victim's report arrived before
      expect(reports.map((r) => r.banned)).toEqual(supernodes.map(() => true));
      for (const sn of supernodes) {
        const listed = (await (await fetch(`${sn.url}/v1/peers?layer=${layers[0]}`)).json()) as Array<{ peerId: string }>;
        expect(listed.map((p) => p.peerId)).not.toContain(rogue.peerId);
      }
    } finally {
      await rogue.stop();
    }
  });

  it("a node without the cluster key gets nothing from the swarm", async () => {
    const img = await prepare("keyless", 23);
    const holder = await agent("holder");
    await mountAndRead(holder, img.lazy, img.original, "holder");
    const otherKey = join(work, "other.key");
    await writeFile(otherKey, formatSwarmKey(generateSwarmKey()));
    const outsider = await startAgent(join(work, "outsider"), [
      "--plain-http", "--prefetch", "off", "--supernode", supernodes.map((s) => s.url).join(","),
      "--swarm-key", otherKey, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--hedge-delay", "200ms",
    ]);
    agents.push(outsider);
    const before = (await callAgent<AgentStatus>(holder.root, "GET", "/v1/status")).p2p!.uploadsServed;
    const s = await mountAndRead(outsider, img.lazy, img.original, "outsider");
    expect(s.sources.peer).toBeUndefined();
    expect((await callAgent<AgentStatus>(holder.root, "GET", "/v1/status")).p2p!.uploadsServed).toBe(before);
  });

  it("keeps reading when a supernode is killed during the run", async () => {
    const img = await prepare("failover", 24);
    const a = await agent("failover", ["--origin-fallback", "false", "--hedge-delay", "300ms"]);
    await mountAndRead(a, img.lazy, img.original, "failover", async () => {
      supernodes[1]!.child.kill("SIGKILL");
      await new Promise((r) => supernodes[1]!.child.once("exit", r));
    });
  });
});
