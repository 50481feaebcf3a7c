// Soak: a supernode, N agents (peer swarm, FUSE keepers) and the registry on
// loopback for --minutes of random reads, checked byte for byte against the
// unpacked original, while a driver kills and restarts agents (SIGKILL: the
// keeper holds the mounts), replaces agents by fresh hosts (empty store),
// kills and restarts the supernode and the registry, freezes the registry
// (SIGSTOP), rots an agent's store (bytes flipped in a chunk file, same
// length, then the agent restarted), asks an agent to mount an image whose
// origin answers an endless manifest, and floods the tracker with signed
// reports and announces of fake peers, at random.
//   node bench/src/soak/main.ts [--minutes 10] [--agents 4] [--seed 1] [--json]
// Needs root (FUSE, drop_caches), docker-registry, skopeo, umoci. Not in CI.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { callAgent } from "@shoal/agent/client";
import { formatSwarmKey, generateSwarmKey, readSwarmKey } from "@shoal/p2p";
import { sealForTest, testPeerIdentity } from "@shoal/swarm/testsuite";
import {
  freePort, largeImage, pushLayout, runShoalOk, snapshotTree, startAgent, startRegistry, startSupernode, umociUnpack, unmountAllUnder, writeImageLayout,
  type RunningAgent, type ShoalDaemon,
} from "@shoal/testkit";
import { installExitHook, liveProcs, liveWorkDirs, sweepStaleWorkDirs } from "../leftovers.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    agents: { type: "string", default: "4" },
    seed: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});
const MINUTES = Number(values.minutes);
const N = Number(values.agents);
let seed = Number(values.seed) >>> 0 || 1;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};
const between = (a: number, b: number) => a + rand() * (b - a);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => console.error(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}`);

installExitHook();
await sweepStaleWorkDirs("shoal-soak-");
const work = await mkdtemp(join(tmpdir(), `shoal-soak-${process.pid}-`));
liveWorkDirs.add(work);

const registry = await startRegistry();
log("building and converting the image");
const img = largeImage({ totalBytes: 48 << 20, seed: 31, layers: 2, maxFileSize: 2 << 20 });
const layout = await writeImageLayout(join(work, "layout"), img.layers, { tag: "v1" });
await pushLayout(layout.dir, "v1", `${registry.host}/soak:v1`);
const image = `${registry.host}/soak:lazy`;
await runShoalOk(["convert", "--plain-http", `${registry.host}/soak:v1`, image], { env: { XDG_CACHE_HOME: join(work, "cache") } });
const reference = (await umociUnpack(layout.dir, "v1", join(work, "reference"))).rootfs;
const files = [...await snapshotTree(reference)].filter(([, n]) => n.type === "file" && (n.size ?? 0) > 0).map(([path, n]) => ({ path, size: n.size! }));
const filesJson = join(work, "files.json");
await writeFile(filesJson, JSON.stringify(files));
const keyFile = join(work, "swarm.key");
await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));

const snPort = await freePort();
const snUrl = `http://127.0.0.1:${snPort}`;
const snArgs = ["--registries", registry.host, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"];
let supernode: ShoalDaemon | undefined = await startSupernode(join(work, "supernode"), snPort, snArgs);
liveProcs.add(supernode.child);
const agentArgs = ["--plain-http", "--supernode", snUrl, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--prefetch", "off"];
const env = { SHOAL_LOG_LEVEL: "warn" };

interface Host { i: number; root: string; mnt: string; agent: RunningAgent | undefined; reader: ChildProcess | undefined; generation: number }
const hosts: Host[] = [];
const counts = { ok: 0, failed: 0, wrong: 0, failedInOutage: 0, stuck: 0 };
/** A read slower than this is stuck: the fetch deadline (20 s) plus an agent restart's hold, with room. */
const STUCK_MS = 30_000;
const faults = { bitRotCaught: 0, bitRotFiles: 0, oversizedRefused: 0, oversizedOther: 0, reportsSent: 0, reportsRefused: 0, fakeAnnounces: 0 };
const errors: string[] = [];
const outages: Array<{ what: string; from: number; to: number }> = [];
const slowest = { ms: 0 };
/** Chunk bytes by source over the agents running at the end (a replaced host's counts went with it). */
const sourceBytes: Record<string, number> = {};
const readerMain = fileURLToPath(new URL("./reader.ts", import.meta.url));

async function startHost(h: Host): Promise<void> {
  await mkdir(h.root, { recursive: true });
  await mkdir(h.mnt, { recursive: true });
  h.agent = await startAgent(h.root, agentArgs, { env });
  liveProcs.add(h.agent.child);
  await callAgent(h.root, "POST", "/v1/mounts", { image, mountpoint: h.mnt });
  startReader(h);
}

function startReader(h: Host): void {
  const r = spawn(process.execPath, [readerMain, h.mnt, reference, filesJson, String(h.i * 7919 + ++h.generation)], { stdio: ["ignore", "pipe", "inherit"] });
  liveProcs.add(r);
  h.reader = r;
  createInterface({ input: r.stdout! }).on("line", (line) => {
    const m = JSON.parse(line) as { r: "ok" | "failed" | "wrong"; ms: number; err?: string };
    counts[m.r]++;
    slowest.ms = Math.max(slowest.ms, m.ms);
    if (m.ms > STUCK_MS) counts.stuck++;
    if (m.r === "failed" && inOutage(Date.now() - m.ms, Date.now())) counts.failedInOutage++;
    else if (m.r !== "ok" && errors.length < 20) errors.push(`host ${h.i}: ${m.r}: ${m.err}`);
  });
}

/** An origin whose every manifest is an endless chunked body (600 MiB at most): the agent must cut it off at its bound. */
const huge = createServer((req, res) => {
  if (req.url === "/v2/") return void res.writeHead(200, { "content-type": "application/json" }).end("{}");
  res.writeHead(200, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
  const piece = Buffer.alloc(1 << 20, 0x20);
  let sent = 0;
  const pump = () => {
    while (sent < 600 && !res.destroyed) {
      sent++;
      if (!res.write(piece)) return void res.once("drain", pump);
    }
    res.end();
  };
  pump();
});
await new Promise<void>((r) => huge.listen(0, "127.0.0.1", r));
const hugeHost = `127.0.0.1:${(huge.address() as { port: number }).port}`;

const psk = (await readSwarmKey(keyFile)).psk;
const flooder = testPeerIdentity();
const post = async (url: string, body: unknown) => (await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) })).status;
const fakeLayer = () => `sha256:${randomBytes(32).toString("hex")}`;

/** Flip two bytes in the middle of up to three inflated chunk files of `root`'s store (the length stays). */
async function rot(root: string): Promise<number> {
  const chunks = join(root, "store", "chunks");
  const raw: string[] = [];
  for (const shard of await readdir(chunks).catch(() => [] as string[])) {
    for (const f of await readdir(join(chunks, shard)).catch(() => [] as string[])) if (f.endsWith(".raw")) raw.push(join(chunks, shard, f));
  }
  let n = 0;
  for (let k = 0; k < 3 && raw.length > 0; k++) {
    const file = raw.splice(Math.floor(rand() * raw.length), 1)[0]!;
    const fh = await open(file, "r+");
    try {
      const { size } = await fh.stat();
      if (size < 4) continue;
      const at = Math.floor(size / 2);
      const b = Buffer.alloc(2);
      await fh.read(b, 0, 2, at);
      b[0]! ^= 0xff;
      b[1]! ^= 0x5a;
      await fh.write(b, 0, 2, at);
      n++;
    } finally {
      await fh.close();
    }
  }
  return n;
}

/** Chunks the agents of `root` found rotten on disk and dropped (their logs say so). */
async function rotCaught(root: string): Promise<number> {
  let n = 0;
  for (const f of (await readdir(root).catch(() => [] as string[])).filter((name) => /^agent-\d+\.log$/.test(name))) {
    n += (await readFile(join(root, f), "utf8").catch(() => "")).split("stored chunk is corrupt on disk").length - 1;
  }
  return n;
}

/** True when [from, to] overlaps a time when the registry and the supernode were both down. */
function inOutage(from: number, to: number): boolean {
  const down = (what: string) => outages.filter((o) => o.what === what && o.from <= to && (o.to === 0 || o.to >= from));
  return down("registry").length > 0 && down("supernode").length > 0;
}

async function stopReader(h: Host): Promise<void> {
  const r = h.reader;
  h.reader = undefined;
  if (!r || r.exitCode !== null || r.signalCode !== null) return;
  const gone = new Promise((res) => r.once("exit", res));
  r.kill("SIGKILL");
  await gone;
}

/** Resident memory of `pid`, bytes, or 0. */
async function rss(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}
const peak: Record<string, number> = { agent: 0, keeper: 0, supernode: 0, registry: 0 };
/** The agents' largest RSS in each minute of the soak: flat, or growing. */
const agentByMinute: number[] = [];
let soakStart = Date.now();
async function sample(): Promise<void> {
  const keeperPids = await Promise.all(hosts.map(async (h) => Number((await readFile(join(h.root, "fuse-keeper.pid"), "utf8").catch(() => "")).trim())));
  const set = (k: string, v: number) => (peak[k] = Math.max(peak[k]!, v));
  for (const h of hosts) {
    const r = await rss(h.agent?.pid);
    set("agent", r);
    const minute = Math.floor((Date.now() - soakStart) / 60_000);
    agentByMinute[minute] = Math.max(agentByMinute[minute] ?? 0, r);
  }
  for (const p of keeperPids) set("keeper", await rss(p));
  set("supernode", await rss(supernode?.pid));
  set("registry", await rss(registry.pid));
}

const events: Record<string, number> = {
  "agent killed": 0, "host replaced": 0, "supernode killed": 0, "registry killed": 0, "registry frozen": 0, "store rotted": 0, "oversized manifest": 0, "tracker flood": 0,
};
async function chaos(): Promise<void> {
  const x = rand();
  if (x < 0.12) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`rot agent ${h.i}'s store: SIGKILL, flip bytes in chunk files, start again`);
    await h.agent!.kill();
    faults.bitRotFiles += await rot(h.root);
    h.agent = await startAgent(h.root, agentArgs, { env });
    liveProcs.add(h.agent.child);
    events["store rotted"]!++;
  } else if (x < 0.22) {
    log("SIGSTOP registry (frozen: connections hang)");
    const o = { what: "registry", from: Date.now(), to: 0 };
    outages.push(o);
    registry.freeze();
    await sleep(between(5000, 15_000));
    registry.thaw();
    o.to = Date.now();
    events["registry frozen"]!++;
  } else if (x < 0.3) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`agent ${h.i}: mount an image whose origin sends an endless manifest`);
    const dir = join(work, `mnt-huge-${h.i}`);
    await mkdir(dir, { recursive: true });
    const err = await callAgent(h.root, "POST", "/v1/mounts", { image: `${hugeHost}/huge:v1`, mountpoint: dir }, { timeoutMs: 60_000 }).then(() => undefined, (e: unknown) => e as Error);
    if (err && /MANIFEST_TOO_LARGE/.test(`${err.message} ${(err as { code?: string }).code ?? ""}`)) faults.oversizedRefused++;
    else {
      faults.oversizedOther++;
      if (errors.length < 20) errors.push(`host ${h.i}: oversized manifest: ${err ? err.message : "mounted!"}`);
    }
    events["oversized manifest"]!++;
  } else if (x < 0.38) {
    log("tracker flood: 300 fake peers announce, 2,000 reports about fake peers");
    await post(`${snUrl}/v1/announce`, await sealForTest("announce", { peerId: flooder.peerId, addrs: ["/ip4/127.0.0.1/tcp/1"], layers: [fakeLayer()] }, flooder, psk)).catch(() => 0);
    for (let k = 0; k < 300; k++) {
      const fake = testPeerIdentity();
      await post(`${snUrl}/v1/announce`, await sealForTest("announce", { peerId: fake.peerId, addrs: ["/ip4/127.0.0.1/tcp/1"], layers: Array.from({ length: 20 }, fakeLayer) }, fake, psk)).catch(() => 0);
      faults.fakeAnnounces++;
    }
    for (let k = 0; k < 2000; k += 50) {
      const statuses = await Promise.all(Array.from({ length: 50 }, async () =>
        post(`${snUrl}/v1/report`, await sealForTest("report", { reporter: flooder.peerId, peerId: testPeerIdentity().peerId, chunk: fakeLayer() }, flooder, psk)).catch(() => 0)));
      faults.reportsSent += statuses.length;
      faults.reportsRefused += statuses.filter((st) => st >= 400 || st === 0).length;
    }
    events["tracker flood"]!++;
  } else if (x < 0.55) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`SIGKILL agent ${h.i}; its keeper holds the mount`);
    await h.agent!.kill();
    await sleep(between(500, 4000));
    h.agent = await startAgent(h.root, agentArgs, { env });
    liveProcs.add(h.agent.child);
    events["agent killed"]!++;
  } else if (x < 0.68) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`host ${h.i} replaced by a fresh one (empty store)`);
    await stopReader(h);
    await h.agent!.stop();
    await unmountAllUnder(h.root);
    await unmountAllUnder(h.mnt);
    faults.bitRotCaught += await rotCaught(h.root);
    await rm(h.root, { recursive: true, force: true });
    await startHost(h);
    events["host replaced"]!++;
  } else if (x < 0.84) {
    log("SIGKILL supernode");
    const o = { what: "supernode", from: Date.now(), to: 0 };
    outages.push(o);
    await supernode!.kill();
    supernode = undefined;
    await sleep(between(2000, 6000));
    supernode = await startSupernode(join(work, "supernode"), snPort, snArgs);
    liveProcs.add(supernode.child);
    o.to = Date.now();
    events["supernode killed"]!++;
  } else {
    log("SIGKILL registry");
    const o = { what: "registry", from: Date.now(), to: 0 };
    outages.push(o);
    await registry.halt();
    await sleep(between(2000, 6000));
    await registry.restart();
    o.to = Date.now();
    events["registry killed"]!++;
  }
}

try {
  for (let i = 0; i < N; i++) hosts.push({ i, root: join(work, `agent-${i}`), mnt: join(work, `mnt-${i}`), agent: undefined, reader: undefined, generation: 0 });
  await Promise.all(hosts.map((h) => startHost(h)));
  log(`${N} agents mounted ${image} (${files.length} files); soaking for ${MINUTES} min`);
  soakStart = Date.now();
  const end = soakStart + MINUTES * 60_000;
  const sampler = setInterval(() => void sample(), 1000);
  // the kernel's page cache would answer repeated reads without the agents: drop it now and then
  const dropper = setInterval(() => void writeFile("/proc/sys/vm/drop_caches", "1").catch(() => undefined), 10_000);
  const progress = setInterval(() => log(`reads ok ${counts.ok}, failed ${counts.failed}, wrong ${counts.wrong}`), 30_000);
  while (Date.now() < end) {
    await sleep(between(5000, 20_000));
    if (Date.now() >= end) break;
    await chaos();
  }
  clearInterval(sampler);
  clearInterval(dropper);
  clearInterval(progress);
  await sleep(2000); // reads in flight finish
} finally {
  for (const h of hosts) await stopReader(h);
  for (const h of hosts) {
    const st = await callAgent<{ sources: Record<string, { bytes: number } | undefined> }>(h.root, "GET", "/v1/status").catch(() => undefined);
    for (const [k, v] of Object.entries(st?.sources ?? {})) sourceBytes[k] = (sourceBytes[k] ?? 0) + (v?.bytes ?? 0);
  }
  for (const h of hosts) await h.agent?.stop().catch(() => undefined);
  for (const h of hosts) faults.bitRotCaught += await rotCaught(h.root);
  await supernode?.stop().catch(() => undefined);
  await unmountAllUnder(work);
  await registry.stop();
  huge.closeAllConnections();
  huge.close();
  await rm(work, { recursive: true, force: true });
  liveWorkDirs.delete(work);
}

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
const lines = [
  `soak: ${MINUTES} min, ${N} agents, image ${(img.layers.length)} layers ${files.length} files (48 MiB)`,
  `chaos: ${Object.entries(events).map(([k, v]) => `${k} ${v}`).join(", ")}`,
  `reads done ${counts.ok + counts.failed + counts.wrong}: ok ${counts.ok}, failed ${counts.failed} (${counts.failedInOutage} while registry and supernode were both down), wrong bytes ${counts.wrong}, stuck past ${STUCK_MS / 1000} s ${counts.stuck}`,
  `faults: chunk files rotted ${faults.bitRotFiles} (found rotten and dropped by the agents: ${faults.bitRotCaught}), endless manifests refused ${faults.oversizedRefused} (otherwise ${faults.oversizedOther}), tracker reports sent ${faults.reportsSent} (refused ${faults.reportsRefused}), fake peers announced ${faults.fakeAnnounces}`,
  `chunk bytes by source (agents alive at the end): ${Object.entries(sourceBytes).map(([k, v]) => `${k} ${mib(v)}`).join(", ") || "none"}`,
  `slowest read ${(slowest.ms / 1000).toFixed(1)} s`,
  `agents' largest RSS by minute: ${[...agentByMinute].map((b) => mib(b ?? 0)).join(", ")}`,
  `peak RSS: agent ${mib(peak.agent!)}, FUSE keeper ${mib(peak.keeper!)}, supernode ${mib(peak.supernode!)}, registry ${mib(peak.registry!)}`,
  ...errors.map((e) => `  ${e}`),
];
for (const l of lines) console.log(l);
if (values.json) console.log(JSON.stringify({ minutes: MINUTES, agents: N, counts, faults, events, peak, sourceBytes, slowestMs: slowest.ms, errors }, null, 2));
