// Swarm distribution: N hosts get the realistic image (Debian 12 + python3 +
// nginx) at the same moment, over a private LAN of network namespaces (a
// Linux bridge; registry link 200 Mbit/s, every other link 1 Gbit/s, tc tbf
// both ways). For each N, in one run:
//   (a) baseline: every host `skopeo copy`s the whole image from the registry concurrently
//   (b) shoal:    one supernode + N agents (peer swarm, prefetch on), all mount at once,
//                 cold supernode, until every agent's prefetch has finished
//   (c) optional: as (b) after `shoal preheat` into the supernode
// Measured: wall time until all N are done, and registry blob bytes served.
import { availableParallelism } from "node:os";
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CLI, layerBytes, shoalCli } from "../shoal-cli.ts";
import { cpuSecondsOf, machineCpuTimes, type MachineCpu } from "../proc-cpu.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { installExitHook, liveWorkDirs, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import { callAgent } from "@shoal/agent/client";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import {
  createNetnsLan, pushLayout, startNetnsRegistry, unmountAllUnder,
  type NetnsLan, type NetnsLanMember, type NetnsRegistry, type Readiness, type ShoalDaemon,
} from "@shoal/testkit";

const WORK_PREFIX = "shoal-bench-swarm-";
const SUPERNODE_PORT = 7070;
const SUPERNODE_METRICS_PORT = 7072;

/** Options of {@link runSwarmBench}. */
export interface SwarmBenchOptions {
  /** Swarm sizes to measure, e.g. [1, 4, 8, 16]. */
  hosts: number[];
  /** Registry link cap, Mbit/s each way. Default 200. */
  registryMbit?: number;
  /** Cap of every other link (hosts, supernode), Mbit/s each way. Default 1000. */
  hostMbit?: number;
  /** `shoal agent --origin-fallback`. Default true. */
  originFallback?: boolean;
  /** Also run (c): preheat the supernode, then the swarm. Default false. */
  preheat?: boolean;
  /** Skip (a). */
  skipBaseline?: boolean;
  /** Give up on one pass after this many seconds. Default 600. */
  timeoutSec?: number;
  cacheDir?: string;
  cli?: string;
  log?: (line: string) => void;
}

/** Bytes per source summed over the agents (`shoal status` sources). */
export type SourceBytes = Record<string, number>;

export interface BaselinePass {
  /** Until the last `skopeo copy` finished. */
  sec: number;
  /** Slowest and fastest single host. */
  perHostSec: { min: number; max: number };
  registryBytes: number;
  registryRequests: number;
}

export interface ShoalPass {
  /** From the moment all mounts were requested until every agent's prefetch finished. */
  sec: number;
  /** Mount call times (pull: metadata only), max over agents. */
  mountSecMax: number;
  perHostSec: { min: number; max: number };
  /** Registry blob bytes from agents' mounts on (supernode and any origin fallback), preheat excluded. */
  registryBytes: number;
  registryRequests: number;
  sources: SourceBytes;
  /** Of the `peer` bytes, those the supernode served as a member of the swarm (its libp2p seed; its metrics' shoal_supernode_upload_bytes). */
  seedBytes?: number;
  /** Chunk fetches hedged onto a second source, summed over the agents. */
  hedges: number;
  /**
   * CPU seconds (user + system, all threads) spent during the pass by the
   * agents, the supernode and the registry: on one machine that hosts them
   * all, the pass cannot finish before `cpuSec.total / cores`.
   */
  cpuSec: { agents: number; supernode: number; registry: number; total: number };
  /**
   * The whole machine's CPU seconds during the pass (/proc/stat, all
   * cores): busy (these processes, the kernel's networking, the bench
   * itself) and stolen by the hypervisor, which the machine did not get to
   * run at all. Absent in results kept before it was measured.
   */
  machineSec?: MachineCpu;
  /**
   * The image's layers' chunk counts, and for each agent the chunk its
   * prefetch began each layer from (random: the largest source of one
   * pass's spread, which the fleet simulator replays). Absent in results
   * kept before it was recorded.
   */
  prefetchLayers?: { chunks: number[]; from: number[][] };
  /** The supernode's API requests by route: how many, and their seconds summed (`shoal_supernode_request_seconds`; a fresh supernode each pass). */
  supernodeRequests?: Record<string, { count: number; sec: number }>;
  /** (c) only: the preheat. */
  preheatSec?: number;
  preheatRegistryBytes?: number;
}

export interface SwarmRow {
  n: number;
  baseline?: BaselinePass;
  shoal?: ShoalPass | { failed: string };
  preheated?: ShoalPass | { failed: string };
}

export interface SwarmBenchResult {
  image: { compressedBytes: number; uncompressedBytes: number; lazyBytes: number; cached: boolean };
  registryMbit: number;
  hostMbit: number;
  originFallback: boolean;
  subnet: string;
  rows: SwarmRow[];
}

const sec = (t0: number) => (performance.now() - t0) / 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms)); // polling only, never measured

let CLI = DEFAULT_CLI;
let { cliOk, daemon } = shoalCli(CLI);




interface AgentStatusLite {
  sources: Record<string, { chunks: number; bytes: number }>;
  hedges?: number;
  images: Array<{ prefetch?: { finished: boolean; chunksDone: number; chunksTotal: number; failures?: number; layers?: Array<{ chunks: number; from: number }> } }>;
}



/** Start a shoal daemon in `member`'s network namespace, its log beside its state. */
function startIn(member: NetnsLanMember, args: string[], logFile: string, ready: Readiness, timeoutMs: number): Promise<ShoalDaemon> {
  return daemon(args, { logFile, ready, timeoutMs, spawn: (cmd, a, o) => member.spawnNetOnly(cmd, a, o) });
}

async function runBaseline(reg: NetnsRegistry, ref: string, hosts: NetnsLanMember[], work: string): Promise<BaselinePass> {
  const dirs = hosts.map((_, i) => join(work, `baseline-${i}`));
  await reg.settle();
  reg.resetStats();
  const t0 = performance.now();
  const each = await Promise.all(hosts.map(async (h, i) => {
    await h.exec("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${dirs[i]!}:v1`]);
    return sec(t0);
  }));
  const total = sec(t0);
  await reg.settle();
  const st = reg.stats();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  return { sec: total, perHostSec: { min: Math.min(...each), max: Math.max(...each) }, registryBytes: st.blobBytes, registryRequests: st.blobRequests };
}

interface ShoalCtx {
  reg: NetnsRegistry;
  lazyRef: string;
  supernode: NetnsLanMember;
  hosts: NetnsLanMember[];
  work: string;
  keyFile: string;
  originFallback: boolean;
  preheat: boolean;
  timeoutSec: number;
  log: (s: string) => void;
}

async function runShoal(c: ShoalCtx, tag: string): Promise<ShoalPass> {
  const dir = join(c.work, tag);
  await mkdir(dir, { recursive: true });
  const snUrl = `http://${c.supernode.nsAddr}:${SUPERNODE_PORT}`;
  const procs: ShoalDaemon[] = [];
  const roots = c.hosts.map((_, i) => join(dir, `agent-${i}`));
  const mnts = c.hosts.map((_, i) => join(dir, `mnt-${i}`));
  const mounted = new Set<number>();
  const logLevel = process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "info";
  try {
    const snRoot = join(dir, "supernode");
    await mkdir(snRoot, { recursive: true });
    procs.push(await startIn(c.supernode, [
      "supernode", "--root", snRoot, "--listen", `${c.supernode.nsAddr}:${SUPERNODE_PORT}`, "--supernodes", snUrl, "--registries", c.reg.host, "--plain-http", "--log-level", logLevel,
      // a member of the swarm: its tracker takes the agents' sealed announces, and it seeds over libp2p
      "--swarm-key", c.keyFile, "--p2p-listen", `/ip4/${c.supernode.nsAddr}/tcp/0`, "--metrics-listen", `${c.supernode.nsAddr}:${SUPERNODE_METRICS_PORT}`,
    ], join(dir, "supernode.log"), { tcp: { host: c.supernode.nsAddr, port: SUPERNODE_PORT } }, 60_000));

    await c.reg.settle();
    c.reg.resetStats();
    let preheatSec: number | undefined;
    let preheatRegistryBytes: number | undefined;
    if (c.preheat) {
      const t = performance.now();
      await cliOk(["preheat", "--supernode", snUrl, "--plain-http", c.lazyRef]);
      preheatSec = sec(t);
      await c.reg.settle();
      preheatRegistryBytes = c.reg.stats().blobBytes;
    }

    // every agent starts at once; each is waited for until its socket answers
    procs.push(...await Promise.all(c.hosts.map(async (h, i) => {
      await mkdir(roots[i]!, { recursive: true });
      await mkdir(mnts[i]!, { recursive: true });
      return startIn(h, [
        "agent", "--root", roots[i]!, "--plain-http", "--supernode", snUrl, "--swarm-key", c.keyFile,
        "--p2p-listen", `/ip4/${h.nsAddr}/tcp/0`, "--prefetch", "on", "--prefetch-rate", "1G",
        "--origin-fallback", String(c.originFallback), "--log-level", logLevel,
      ], join(dir, `agent-${i}.log`), { socket: join(roots[i]!, "agent.sock") }, 120_000);
    })));

    await c.reg.settle();
    const before = c.reg.stats();
    const cpu = () => ({
      agents: procs.slice(1).reduce((n, p) => n + cpuSecondsOf(p.child.pid), 0),
      supernode: cpuSecondsOf(procs[0]!.child.pid),
      registry: cpuSecondsOf(c.reg.pid),
    });
    const cpu0 = cpu();
    const machine0 = machineCpuTimes();
    c.log(`  ${tag}: ${c.hosts.length} agents ready; mounting all at once`);
    const t0 = performance.now();
    const mountSecs = await Promise.all(c.hosts.map(async (_, i) => {
      mounted.add(i);
      await callAgent(roots[i]!, "POST", "/v1/mounts", { image: c.lazyRef, mountpoint: mnts[i]! });
      return sec(t0);
    }));
    const doneAt: (number | undefined)[] = c.hosts.map(() => undefined);
    const last: AgentStatusLite[] = [];
    let lastReport = performance.now();
    while (doneAt.some((d) => d === undefined)) {
      for (let i = 0; i < c.hosts.length; i++) {
        if (doneAt[i] !== undefined) continue;
        const p = procs[i + 1]!;
        if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`agent ${i} exited during the pass:\n${p.logs().slice(-4000)}`);
        const s = await callAgent<AgentStatusLite>(roots[i]!, "GET", "/v1/status", undefined, { timeoutMs: 30_000 });
        last[i] = s;
        if (s.images[0]?.prefetch?.finished) doneAt[i] = sec(t0);
      }
      if (sec(t0) > c.timeoutSec) {
        const prog = last.map((s, i) => `${i}:${s?.images[0]?.prefetch?.chunksDone ?? "?"}/${s?.images[0]?.prefetch?.chunksTotal ?? "?"}`).join(" ");
        throw new Error(`not every agent finished its prefetch within ${c.timeoutSec} s (${prog})`);
      }
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now();
        c.log(`  ${tag}: ${sec(t0).toFixed(0)} s, ${doneAt.filter((d) => d !== undefined).length}/${c.hosts.length} done`);
      }
      await sleep(100);
    }
    const total = Math.max(...doneAt.map((d) => d!));
    const cpu1 = cpu();
    const machine1 = machineCpuTimes();
    const cpuSec = {
      agents: cpu1.agents - cpu0.agents,
      supernode: cpu1.supernode - cpu0.supernode,
      registry: cpu1.registry - cpu0.registry,
      total: 0,
    };
    cpuSec.total = cpuSec.agents + cpuSec.supernode + cpuSec.registry;
    await c.reg.settle();
    const after = c.reg.stats();
    const sources: SourceBytes = {};
    let hedges = 0;
    const layers: Array<Array<{ chunks: number; from: number }> | undefined> = [];
    for (let i = 0; i < c.hosts.length; i++) {
      const s = await callAgent<AgentStatusLite>(roots[i]!, "GET", "/v1/status", undefined, { timeoutMs: 30_000 });
      for (const [k, v] of Object.entries(s.sources)) sources[k] = (sources[k] ?? 0) + v.bytes;
      hedges += s.hedges ?? 0;
      layers.push(s.images[0]?.prefetch?.layers);
    }
    const prefetchLayers = layers.every((l) => l !== undefined) ? { chunks: layers[0]!.map((l) => l.chunks), from: layers.map((ls) => ls!.map((l) => l.from)) } : undefined;
    const metrics = await (await fetch(`http://${c.supernode.nsAddr}:${SUPERNODE_METRICS_PORT}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
    const seedBytes = Number(/^shoal_supernode_upload_bytes (\d+)/m.exec(metrics)?.[1] ?? Number.NaN);
    const supernodeRequests: Record<string, { count: number; sec: number }> = {};
    for (const m of metrics.matchAll(/^shoal_supernode_request_seconds_(sum|count)\{route="([a-z]+)"\} ([0-9.e+-]+)$/gm)) {
      const r = (supernodeRequests[m[2]!] ??= { count: 0, sec: 0 });
      if (m[1] === "sum") r.sec = Number(m[3]);
      else r.count = Number(m[3]);
    }
    return {
      sec: total,
      mountSecMax: Math.max(...mountSecs),
      perHostSec: { min: Math.min(...doneAt.map((d) => d!)), max: total },
      registryBytes: after.blobBytes - before.blobBytes,
      registryRequests: after.blobRequests - before.blobRequests,
      sources,
      seedBytes,
      hedges,
      cpuSec,
      machineSec: { busy: machine1.busy - machine0.busy, steal: machine1.steal - machine0.steal },
      ...(prefetchLayers ? { prefetchLayers } : {}),
      supernodeRequests,
      ...(preheatSec !== undefined ? { preheatSec, preheatRegistryBytes } : {}),
    };
  } finally {
    await Promise.all([...mounted].map((i) => callAgent(roots[i]!, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(mnts[i]!)}`, undefined, { timeoutMs: 20_000 }).catch(() => {})));
    await Promise.all(procs.map((p) => stopProcess(p.child, 10_000)));
    if (process.env.SHOAL_BENCH_LOG_DIR) {
      await Promise.all(procs.map((p, i) => writeFile(join(process.env.SHOAL_BENCH_LOG_DIR!, `${tag}-${i === 0 ? "supernode" : `agent-${i - 1}`}.log`), p.logs())));
    }
    if (await unmountAllUnder(dir)) await rm(dir, { recursive: true, force: true });
    else c.log(`warning: mounts left under ${dir}`);
  }
}

/**
 * Builds (or loads) the realistic image and measures, for each N of
 * `opts.hosts`, the baseline and shoal distributing it to N hosts at once.
 * Cleans up everything it created (namespaces, veths, bridge, registry,
 * supernode, agents, mounts, temp dirs), also on failure.
 */
export async function runSwarmBench(opts: SwarmBenchOptions): Promise<SwarmBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const registryMbit = opts.registryMbit ?? 200;
  const hostMbit = opts.hostMbit ?? 1000;
  const originFallback = opts.originFallback ?? true;
  const timeoutSec = opts.timeoutSec ?? 600;
  const sizes = opts.hosts;
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) throw new Error("hosts: integers from 1 to 64");
  CLI = opts.cli ?? DEFAULT_CLI;
  ({ cliOk, daemon } = shoalCli(CLI));
  installExitHook();
  const restoreProxies = withoutProxies();

  const image = await realisticImage(log, opts.cacheDir);
  const maxN = Math.max(...sizes);
  let lan: NetnsLan | undefined;
  let reg: NetnsRegistry | undefined;
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  try {
    lan = await createNetnsLan([{ rateMbit: registryMbit }, { rateMbit: hostMbit }, ...Array.from({ length: maxN }, () => ({ rateMbit: hostMbit }))]);
    const [regNs, snNs, ...hostNs] = lan.members;
    reg = await startNetnsRegistry(regNs!);
    const repo = "bench/realistic";
    const src = `${reg.host}/${repo}:v1`;
    const lazyRef = `${reg.host}/${repo}:v1-lazy`;
    log(`LAN ${lan.prefix}.0/24 on bridge ${lan.bridge}: registry ${reg.host} (${registryMbit} Mbit/s), supernode ${snNs!.nsAddr}, ${maxN} hosts (${hostMbit} Mbit/s); pushing and converting (setup)`);
    await pushLayout(image.layoutDir, image.tag, src);
    await cliOk(["convert", "--plain-http", src, lazyRef]);
    const lazyBytes = await layerBytes(reg, repo, "v1-lazy");
    const keyFile = join(work, "swarm.key");
    await writeFile(keyFile, formatSwarmKey(generateSwarmKey()), { mode: 0o600 });

    const rows: SwarmRow[] = [];
    for (const n of sizes) {
      const hosts = hostNs.slice(0, n);
      const row: SwarmRow = { n };
      rows.push(row);
      if (!opts.skipBaseline) {
        log(`N=${n}: baseline (skopeo copy on every host at once)`);
        row.baseline = await runBaseline(reg, src, hosts, work);
        log(`  baseline: ${row.baseline.sec.toFixed(2)} s, registry ${(row.baseline.registryBytes / 2 ** 20).toFixed(1)} MiB`);
      }
      const ctx: ShoalCtx = { reg, lazyRef, supernode: snNs!, hosts, work, keyFile, originFallback, preheat: false, timeoutSec, log };
      log(`N=${n}: shoal (cold supernode, ${n} agents mount at once)`);
      try {
        row.shoal = await runShoal(ctx, `shoal-n${n}`);
        log(`  shoal: ${row.shoal.sec.toFixed(2)} s, registry ${(row.shoal.registryBytes / 2 ** 20).toFixed(1)} MiB`);
      } catch (err) {
        row.shoal = { failed: (err as Error).message };
        log(`  shoal failed: ${(err as Error).message}`);
      }
      if (opts.preheat) {
        log(`N=${n}: shoal after preheat`);
        try {
          row.preheated = await runShoal({ ...ctx, preheat: true }, `preheat-n${n}`);
        } catch (err) {
          row.preheated = { failed: (err as Error).message };
          log(`  preheated failed: ${(err as Error).message}`);
        }
      }
    }
    return {
      image: { compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes, lazyBytes, cached: image.cached },
      registryMbit, hostMbit, originFallback, subnet: `${lan.prefix}.0/24`, rows,
    };
  } finally {
    await reg?.stop();
    await lan?.destroy();
    if (await unmountAllUnder(work)) {
      await rm(work, { recursive: true, force: true });
      liveWorkDirs.delete(work);
    } else log(`left ${work} in place: something is still mounted under it`);
    restoreProxies();
  }
}

/** Human-readable table and ratios. */
export function formatSwarm(r: SwarmBenchResult): string[] {
  const MiB = 2 ** 20;
  const img = r.image.compressedBytes;
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  const x = (n: number) => `${(n / img).toFixed(2)}x`;
  const lines = [
    `swarm: Debian 12 + python3 + nginx, ${mib(img)} compressed (lazy image ${mib(r.image.lazyBytes)}), registry link ${r.registryMbit} Mbit/s, hosts ${r.hostMbit} Mbit/s, LAN ${r.subnet}, origin fallback ${r.originFallback}`,
    "",
    "| N | baseline time | baseline registry bytes (x image) | shoal time | shoal registry bytes (x image) | shoal bytes by source |",
    "|---|---|---|---|---|---|",
  ];
  const ok = (p: SwarmRow["shoal"]): p is ShoalPass => p !== undefined && !("failed" in p);
  for (const row of r.rows) {
    const b = row.baseline;
    const s = row.shoal;
    const bs = b ? `${b.sec.toFixed(2)} s | ${mib(b.registryBytes)} (${x(b.registryBytes)})` : "- | -";
    const ss = ok(s)
      ? `${s.sec.toFixed(2)} s | ${mib(s.registryBytes)} (${x(s.registryBytes)}) | ${Object.entries(s.sources).map(([k, v]) => `${k} ${mib(v)}`).join(", ")}`
      : `failed | - | ${s?.failed.split("\n")[0] ?? "-"}`;
    lines.push(`| ${row.n} | ${bs} | ${ss} |`);
  }
  const pre = r.rows.filter((row) => row.preheated);
  if (pre.length > 0) {
    lines.push("", "| N | preheat time | preheat registry bytes | swarm time after preheat | registry bytes during swarm |", "|---|---|---|---|---|");
    for (const row of pre) {
      const p = row.preheated;
      lines.push(ok(p)
        ? `| ${row.n} | ${p.preheatSec!.toFixed(2)} s | ${mib(p.preheatRegistryBytes!)} | ${p.sec.toFixed(2)} s | ${mib(p.registryBytes)} |`
        : `| ${row.n} | failed: ${p!.failed.split("\n")[0]} | | | |`);
    }
  }
  const good = r.rows.filter((row) => ok(row.shoal));
  if (good.length > 0) {
    const cores = availableParallelism();
    lines.push("", `CPU during the shoal pass (user + system, all processes on this ${cores}-core machine):`, "",
      "| N | agents CPU-s (per agent) | supernode CPU-s | registry CPU-s | total / cores = CPU floor | shoal time | hedged fetches |", "|---|---|---|---|---|---|---|");
    for (const row of good) {
      const s = row.shoal as ShoalPass;
      const c = s.cpuSec;
      lines.push(`| ${row.n} | ${c.agents.toFixed(1)} (${(c.agents / row.n).toFixed(2)}) | ${c.supernode.toFixed(1)} | ${c.registry.toFixed(1)} | ${(c.total / cores).toFixed(2)} s | ${s.sec.toFixed(2)} s | ${s.hedges} |`);
    }
  }
  lines.push("");
  for (const row of good) {
    const s = row.shoal as ShoalPass;
    lines.push(`N=${row.n}: shoal origin egress / image = ${x(s.registryBytes)} (goal <= 1.1x)${row.baseline ? `, baseline ${x(row.baseline.registryBytes)}; time baseline/shoal = ${(row.baseline.sec / s.sec).toFixed(2)}` : ""}`);
  }
  const one = good.find((row) => row.n === 1);
  const big = good.at(-1);
  if (one && big && big.n > 1) {
    const t1 = (one.shoal as ShoalPass).sec;
    const tn = (big.shoal as ShoalPass).sec;
    lines.push(`shoal time(N=${big.n}) / time(N=1) = ${(tn / t1).toFixed(2)} (goal <= 2 at N=16)`);
    if (one.baseline && big.baseline) lines.push(`baseline time(N=${big.n}) / time(N=1) = ${(big.baseline.sec / one.baseline.sec).toFixed(2)}`);
  }
  return lines;
}
