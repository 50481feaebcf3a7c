// Whole pulls through the swarm: N hosts in network namespaces (registry link
// capped, 200 Mbit/s by default) each run `ctr image pull` of the same image
// at the same moment, (a) straight from the registry, (b) through their own
// agent's registry mirror (one supernode, peer swarm), in one run. Each host
// has its own containerd (outside the namespaces; ctr runs inside).
//   node bench/src/mirror/main.ts [--hosts 1,4,8,16] [--registry-rate MBIT] [--host-rate MBIT] [--converted true|false] [--timeout SEC]
// Needs root (network namespaces, bridge), containerd, skopeo, docker-registry, debootstrap (first build of the image).
import { availableParallelism, tmpdir } from "node:os";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { callAgent } from "@shoal/agent/client";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import {
  createNetnsLan, pushLayout, startContainerd, startNetnsRegistry, unmountAllUnder,
  type NetnsLan, type NetnsLanMember, type NetnsRegistry, type RunningContainerd, type ShoalDaemon,
} from "@shoal/testkit";
import { installExitHook, liveWorkDirs, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { layerBytes, shoalCli } from "../shoal-cli.ts";
import { cpuSecondsOf } from "../proc-cpu.ts";

const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "1,4,8,16" },
    "registry-rate": { type: "string", default: "200" },
    "host-rate": { type: "string", default: "1000" },
    converted: { type: "string", default: "true" },
    timeout: { type: "string", default: "900" },
  },
});
const sizes = values.hosts.split(",").map((s) => Number(s.trim()));
const registryMbit = Number(values["registry-rate"]);
const hostMbit = Number(values["host-rate"]);
const converted = values.converted === "true";
const timeoutMs = Number(values.timeout) * 1000;
const SUPERNODE_PORT = 7070;
const MIRROR_PORT = 7075;
const WORK_PREFIX = "shoal-bench-mirror-";
const log = (s: string) => console.error(s);
const sec = (t0: number) => (performance.now() - t0) / 1000;
const { cliOk, daemon } = shoalCli();

/** One pass: wall time, per-host times, origin blob bytes, CPU seconds by kind of process (ctr clients not counted). */
interface Pass {
  sec: number; perHost: { min: number; max: number }; registryBytes: number; cpuSec: { shoal: number; containerd: number; registry: number };
  /** Mirror passes: the agents' piece bytes by source, and their hedges. */
  sources: Record<string, number>; hedges: number;
}

/**
 * Every host pulls `ref` at once, each with a containerd of its own started
 * fresh for the pass (containerd shares content between namespaces: one
 * that pulled before would download nothing); `hostsDir(i)` says where from.
 */
async function pullAll(hosts: NetnsLanMember[], tag: string, reg: NetnsRegistry, ref: string, ns: string, hostsDir: (i: number) => string, cpuPids: () => Array<number | undefined>): Promise<Pass> {
  const ctrds = await Promise.all(hosts.map((_, i) => startContainerd(join(work, `containerd-${tag}-${i}`))));
  live.push(...ctrds);
  try {
    return await timedPulls(hosts, ctrds, reg, ref, ns, hostsDir, cpuPids);
  } finally {
    await Promise.all(ctrds.map((c) => c.stop().catch(() => undefined)));
    await Promise.all(ctrds.map((c) => rm(c.dir, { recursive: true, force: true }).catch(() => undefined)));
  }
}

async function timedPulls(hosts: NetnsLanMember[], ctrds: RunningContainerd[], reg: NetnsRegistry, ref: string, ns: string, hostsDir: (i: number) => string, cpuPids: () => Array<number | undefined>): Promise<Pass> {
  await reg.settle();
  reg.resetStats();
  const cpu = () => ({
    shoal: cpuPids().reduce<number>((n, p) => n + cpuSecondsOf(p), 0),
    containerd: ctrds.reduce<number>((n, c) => n + cpuSecondsOf(c.child.pid), 0),
    registry: cpuSecondsOf(reg.pid),
  });
  const cpu0 = cpu();
  const t0 = performance.now();
  const each = await Promise.all(hosts.map(async (h, i) => {
    const ac = AbortSignal.timeout(timeoutMs);
    await h.exec("ctr", ["--address", ctrds[i]!.address, "-n", ns, "image", "pull", "--hosts-dir", hostsDir(i), ref], { signal: ac });
    return sec(t0);
  }));
  const total = sec(t0);
  const cpu1 = cpu();
  const cpuSec = { shoal: cpu1.shoal - cpu0.shoal, containerd: cpu1.containerd - cpu0.containerd, registry: cpu1.registry - cpu0.registry };
  await reg.settle();
  return { sec: total, perHost: { min: Math.min(...each), max: Math.max(...each) }, registryBytes: reg.stats().blobBytes, cpuSec, sources: {}, hedges: 0 };
}

installExitHook();
const restoreProxies = withoutProxies();
const image = await realisticImage(log);
const maxN = Math.max(...sizes);
await sweepStaleWorkDirs(WORK_PREFIX);
const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
liveWorkDirs.add(work);
let lan: NetnsLan | undefined;
let reg: NetnsRegistry | undefined;
/** containerds running, for cleanup on failure. */
const live: RunningContainerd[] = [];
const rows: Array<{ n: number; direct: Pass; mirror: Pass | { failed: string } }> = [];
let imageBytes = 0;
try {
  lan = await createNetnsLan([{ rateMbit: registryMbit }, { rateMbit: hostMbit }, ...Array.from({ length: maxN }, () => ({ rateMbit: hostMbit }))]);
  const [regNs, snNs, ...hostNs] = lan.members;
  reg = await startNetnsRegistry(regNs!);
  const regHost = reg.host;
  const repo = "bench/realistic";
  await pushLayout(image.layoutDir, image.tag, `${reg.host}/${repo}:v1`);
  if (converted) await cliOk(["convert", "--plain-http", `${reg.host}/${repo}:v1`, `${reg.host}/${repo}:v1-lazy`]);
  const tag = converted ? "v1-lazy" : "v1";
  const ref = `${reg.host}/${repo}:${tag}`;
  imageBytes = await layerBytes(reg, repo, tag);
  log(`image ${ref}: ${(imageBytes / 2 ** 20).toFixed(1)} MiB of layers; registry ${registryMbit} Mbit/s, hosts ${hostMbit} Mbit/s`);
  const keyFile = join(work, "swarm.key");
  await writeFile(keyFile, formatSwarmKey(generateSwarmKey()), { mode: 0o600 });
  // direct: hosts.toml naming the (plain http) registry only
  const directDir = join(work, "certs-direct");
  await mkdir(join(directDir, reg.host), { recursive: true });
  await writeFile(join(directDir, reg.host, "hosts.toml"), `server = "${reg.url}"\n[host."${reg.url}"]\n  capabilities = ["pull", "resolve"]\n`);

  for (const n of sizes) {
    const hosts = hostNs.slice(0, n);
    log(`N=${n}: direct (ctr image pull from the registry on every host at once)`);
    const direct = await pullAll(hosts, `direct-${n}`, reg, ref, "bench", () => directDir, () => []);
    log(`  direct: ${direct.sec.toFixed(2)} s, registry ${(direct.registryBytes / 2 ** 20).toFixed(1)} MiB`);
    const dir = join(work, `mirror-${n}`);
    const procs: ShoalDaemon[] = [];
    try {
      const snUrl = `http://${snNs!.nsAddr}:${SUPERNODE_PORT}`;
      procs.push(await daemon([
        "supernode", "--root", join(dir, "supernode"), "--listen", `${snNs!.nsAddr}:${SUPERNODE_PORT}`, "--supernodes", snUrl, "--registries", reg.host, "--plain-http",
        "--swarm-key", keyFile, "--p2p-listen", `/ip4/${snNs!.nsAddr}/tcp/0`, "--log-level", "warn",
      ], { logFile: join(dir, "supernode.log"), ready: { tcp: { host: snNs!.nsAddr, port: SUPERNODE_PORT } }, timeoutMs: 60_000, spawn: (c, a, o) => snNs!.spawnNetOnly(c, a, o) }));
      procs.push(...await Promise.all(hosts.map((h, i) => daemon([
        "agent", "--root", join(dir, `agent-${i}`), "--plain-http", "--supernode", snUrl, "--swarm-key", keyFile, "--p2p-listen", `/ip4/${h.nsAddr}/tcp/0`,
        "--mirror-listen", `${h.nsAddr}:${MIRROR_PORT}`, "--mirror-registries", regHost, "--prefetch", "off", "--log-level", "warn",
      ], { logFile: join(dir, `agent-${i}.log`), ready: { socket: join(dir, `agent-${i}`, "agent.sock") }, timeoutMs: 120_000, spawn: (c, a, o) => h.spawnNetOnly(c, a, o) }))));
      await Promise.all(hosts.map((h, i) => cliOk([
        "mirror-config", "containerd", "--mirror", `http://${h.nsAddr}:${MIRROR_PORT}`, "--registry", reg!.host, "--plain-http", "--config", join(dir, `certs-${i}`), "--write",
      ])));
      log(`N=${n}: through each host's mirror (cold supernode)`);
      const mirror = await pullAll(hosts, `mirror-${n}`, reg, ref, "bench", (i) => join(dir, `certs-${i}`), () => procs.map((p) => p.child.pid));
      // where the agents' pieces came from, and how often a slow source was hedged onto the next
      for (let i = 0; i < hosts.length; i++) {
        const st = await callAgent<{ sources: Record<string, { bytes: number }>; hedges?: number }>(join(dir, `agent-${i}`), "GET", "/v1/status");
        for (const [k, v] of Object.entries(st.sources)) mirror.sources[k] = (mirror.sources[k] ?? 0) + v.bytes;
        mirror.hedges += st.hedges ?? 0;
      }
      log(`  mirror: ${mirror.sec.toFixed(2)} s, registry ${(mirror.registryBytes / 2 ** 20).toFixed(1)} MiB, agents' pieces by source ${JSON.stringify(Object.fromEntries(Object.entries(mirror.sources).map(([k, v]) => [k, `${(v / 2 ** 20).toFixed(1)} MiB`])))}, ${mirror.hedges} hedges`);
      rows.push({ n, direct, mirror });
    } catch (err) {
      rows.push({ n, direct, mirror: { failed: (err as Error).message.slice(0, 500) } });
      log(`  mirror failed: ${(err as Error).message.slice(0, 2000)}`);
    } finally {
      await Promise.all(procs.map((p) => stopProcess(p.child, 10_000)));
      await unmountAllUnder(dir);
      await rm(dir, { recursive: true, force: true });
    }
  }
} finally {
  for (const c of live) await c.stop().catch(() => undefined);
  await reg?.stop();
  await lan?.destroy();
  if (await unmountAllUnder(work)) {
    await rm(work, { recursive: true, force: true });
    liveWorkDirs.delete(work);
  }
  restoreProxies();
}

const MiB = 2 ** 20;
const cores = availableParallelism();
console.log(`image: ${(imageBytes / MiB).toFixed(1)} MiB of ${converted ? "converted" : "unconverted"} layers; registry ${registryMbit} Mbit/s; ${cores} cores`);
const floor = (p: Pass) => (p.cpuSec.shoal + p.cpuSec.containerd + p.cpuSec.registry) / cores;
console.log("| N | direct s | mirror s | speedup | origin egress direct | origin egress mirror (x image) | mirror per host min-max s | CPU floor s, direct / mirror | mirror CPU s: shoal, containerd |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  if ("failed" in r.mirror) {
    console.log(`| ${r.n} | ${r.direct.sec.toFixed(2)} | failed: ${r.mirror.failed.slice(0, 80)} | | | | | | |`);
    continue;
  }
  const m = r.mirror;
  console.log(`| ${r.n} | ${r.direct.sec.toFixed(2)} | ${m.sec.toFixed(2)} | ${(r.direct.sec / m.sec).toFixed(2)}x | ${(r.direct.registryBytes / MiB).toFixed(1)} MiB | ${(m.registryBytes / MiB).toFixed(1)} MiB (${(m.registryBytes / imageBytes).toFixed(2)}x) | ${m.perHost.min.toFixed(2)}-${m.perHost.max.toFixed(2)} | ${floor(r.direct).toFixed(1)} / ${floor(m).toFixed(1)} | ${m.cpuSec.shoal.toFixed(1)}, ${m.cpuSec.containerd.toFixed(1)} |`);
}
for (const r of rows) {
  if ("failed" in r.mirror) continue;
  console.log(`N=${r.n}: the agents' pieces by source: ${Object.entries(r.mirror.sources).map(([k, v]) => `${k} ${(v / MiB).toFixed(1)} MiB`).join(", ")}; ${r.mirror.hedges} hedges`);
}
const one = rows.find((r) => r.n === 1 && !("failed" in r.mirror));
const big = rows.find((r) => r.n === maxN && !("failed" in r.mirror));
if (one && big && one !== big) console.log(`N=${maxN} through the mirror took ${((big.mirror as Pass).sec / (one.mirror as Pass).sec).toFixed(2)}x the time of N=1 (goal: at most 2x where the CPU floor allows)`);
