// Soak: a supernode, N agents (peer swarm, FUSE keepers) and the registry on
// loopback for --minutes of random reads, checked byte for byte against the
// unpacked original, while a driver kills and restarts agents (SIGKILL: the
// keeper holds the mounts), replaces agents by fresh hosts (empty store), and
// kills and restarts the supernode and the registry, at random.
//   node bench/src/soak/main.ts [--minutes 10] [--agents 4] [--seed 1] [--json]
// Needs root (FUSE, drop_caches), docker-registry, skopeo, umoci. Not in CI.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { callAgent } from "@shoal/agent/client";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
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
const counts = { ok: 0, failed: 0, wrong: 0, failedInOutage: 0 };
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
    if (m.r === "failed" && inOutage(Date.now() - m.ms, Date.now())) counts.failedInOutage++;
    else if (m.r !== "ok" && errors.length < 20) errors.push(`host ${h.i}: ${m.r}: ${m.err}`);
  });
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
async function sample(): Promise<void> {
  const keeperPids = await Promise.all(hosts.map(async (h) => Number((await readFile(join(h.root, "fuse-keeper.pid"), "utf8").catch(() => "")).trim())));
  const set = (k: string, v: number) => (peak[k] = Math.max(peak[k]!, v));
  for (const h of hosts) set("agent", await rss(h.agent?.pid));
  for (const p of keeperPids) set("keeper", await rss(p));
  set("supernode", await rss(supernode?.pid));
  set("registry", await rss(registry.pid));
}

const events: Record<string, number> = { "agent killed": 0, "host replaced": 0, "supernode killed": 0, "registry killed": 0 };
async function chaos(): Promise<void> {
  const x = rand();
  if (x < 0.35) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`SIGKILL agent ${h.i}; its keeper holds the mount`);
    await h.agent!.kill();
    await sleep(between(500, 4000));
    h.agent = await startAgent(h.root, agentArgs, { env });
    liveProcs.add(h.agent.child);
    events["agent killed"]!++;
  } else if (x < 0.55) {
    const h = hosts[Math.floor(rand() * N)]!;
    log(`host ${h.i} replaced by a fresh one (empty store)`);
    await stopReader(h);
    await h.agent!.stop();
    await unmountAllUnder(h.root);
    await unmountAllUnder(h.mnt);
    await rm(h.root, { recursive: true, force: true });
    await startHost(h);
    events["host replaced"]!++;
  } else if (x < 0.78) {
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
  const end = Date.now() + MINUTES * 60_000;
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
  await supernode?.stop().catch(() => undefined);
  await unmountAllUnder(work);
  await registry.stop();
  await rm(work, { recursive: true, force: true });
  liveWorkDirs.delete(work);
}

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
const lines = [
  `soak: ${MINUTES} min, ${N} agents, image ${(img.layers.length)} layers ${files.length} files (48 MiB)`,
  `chaos: ${Object.entries(events).map(([k, v]) => `${k} ${v}`).join(", ")}`,
  `reads done ${counts.ok + counts.failed + counts.wrong}: ok ${counts.ok}, failed ${counts.failed} (${counts.failedInOutage} while registry and supernode were both down), wrong bytes ${counts.wrong}`,
  `chunk bytes by source (agents alive at the end): ${Object.entries(sourceBytes).map(([k, v]) => `${k} ${mib(v)}`).join(", ") || "none"}`,
  `slowest read ${(slowest.ms / 1000).toFixed(1)} s`,
  `peak RSS: agent ${mib(peak.agent!)}, FUSE keeper ${mib(peak.keeper!)}, supernode ${mib(peak.supernode!)}, registry ${mib(peak.registry!)}`,
  ...errors.map((e) => `  ${e}`),
];
for (const l of lines) console.log(l);
if (values.json) console.log(JSON.stringify({ minutes: MINUTES, agents: N, counts, events, peak, sourceBytes, slowestMs: slowest.ms, errors }, null, 2));
