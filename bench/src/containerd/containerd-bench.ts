// Time to first useful work through containerd, for the realistic image (Debian 12 + python3 + nginx)
// served by a registry behind a capped link, in one run:
//   baseline: ctr image pull (containerd's overlayfs snapshotter, layers downloaded and unpacked)
//             + ctr run of the first work (python imports, nginx answers)
//   shoal:    shoal pull (CRI PullImage: remote snapshots, no layer downloaded)
//             + ctr run --snapshotter shoal of the same first work
//   shoal-recording:   the same, with a fresh containerd and a fresh agent (prefetch off) through a
//             supernode on the registry's side of the link; the agent records its startup reads and
//             sends them to the supernode as the fleet's trace (waited for, not measured)
//   shoal-fleet-trace: the same again, fresh containerd and agent (prefetch on) through that
//             supernode: the agent fetches the trace and prefetches its chunks first
//   stargz:   ctr-remote image rpull of an eStargz copy of the image (the stargz snapshotter,
//             built from Debian's packages, as proxy plugin "stargz": remote snapshots over FUSE)
//             + ctr run --snapshotter stargz of the same first work
// containerd 1.6 from Debian, the agent and the stargz daemon are started by the bench with their
// own roots; the registry (and the supernode) run in a network namespace of their own. Pushing and
// converting are setup, not measured.
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createNetns, FIRST_WORK_CONTAINER_SCRIPT, pushLayout, run, runFirstWorkCommand, startContainerd, startNetnsRegistry, unmountAllUnder,
  type FirstWorkResult, type Netns, type NetnsRegistry, type RunningContainerd, type ShoalDaemon,
} from "@shoal/testkit";
import { agentFetched, DEFAULT_CLI, layerBytes, shoalCli, startBenchSupernode, waitForTrace } from "../shoal-cli.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { installExitHook, liveMountRoots, liveWorkDirs, removeWorkDir, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import { buildStargzSnapshotter } from "../stargz/build.ts";
import { startStargzSnapshotter, type StargzDaemon } from "../stargz/daemon.ts";
import { ESTARGZ_FORMS, estargzImage, type EstargzForm, type EstargzImage } from "../stargz/estargz.ts";

/**
 * The passes, in the order they run (stargz last: its background fetch of the whole layer must not
 * share the link with another pass). shoal-fleet-trace needs the trace shoal-recording leaves.
 */
export const CONTAINERD_PASSES = ["baseline", "shoal", "shoal-recording", "shoal-fleet-trace", "stargz"] as const;
export type ContainerdPass = (typeof CONTAINERD_PASSES)[number];

/** Options of {@link runContainerdBench}. */
export interface ContainerdBenchOptions {
  /** Registry link cap, Mbit/s each way. Default 100. */
  rateMbit?: number;
  /** `shoal agent --prefetch` of the shoal pass. Default "off". (shoal-recording runs with off, shoal-fleet-trace with on.) */
  prefetch?: "on" | "off";
  /** The shoal CLI entry. Default: this checkout's. */
  cli?: string;
  /** Passes to run. Default: all of {@link CONTAINERD_PASSES}. shoal-fleet-trace brings shoal-recording with it. */
  only?: readonly ContainerdPass[];
  /** The eStargz copy for the stargz pass. Default "optimized"; falls back to "estargz" when the optimizer fails. */
  stargzForm?: EstargzForm;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** One side: the pull, then the container's first work. Seconds from the start of the pull. */
export interface ContainerdPassFigures {
  pullSec: number;
  /** `ctr run` until nginx in the container answered 200. */
  runSec: number;
  /** Of `runSec`: until the python imports were done. */
  pythonSec: number;
  totalSec: number;
  /** Registry blob body bytes from the pull until the first work was done. */
  blobBytes: number;
  blobRequests: number;
  /** `blobBytes` / the pulled image's compressed layer bytes. */
  shareOfImage: number;
  imageBytes: number;
}

/** A pass through the supernode (shoal-recording, shoal-fleet-trace): what its agent said after the run too. */
export interface ContainerdFleetFigures extends ContainerdPassFigures {
  /** `shoal agent --prefetch` of this pass. */
  prefetch: "on" | "off";
  /** Chunk bytes the agent fetched from anywhere but its own store (supernode, registry, peers), by the end of the run (`shoal status`). */
  agentBytes: number;
  /** Where the prefetch's startup chunks came from (`images[].startup`: "fleet" when the supernode's trace was used); none without prefetch. */
  startup?: string;
  /** How many startup chunks the prefetch put first (`images[].prefetch.startupChunks`). */
  startupChunks?: number;
  /** The image's manifest digest, as the agent reported it. */
  digest?: string;
  /** shoal-recording: seconds from the end of the run until the supernode held the trace (not part of the pass's time). */
  traceWaitSec?: number;
}

/** One pass's times and bytes over stargz's (below 1: the pass is faster / reads less). */
export interface OverStargz {
  pullSec: number;
  runSec: number;
  totalSec: number;
  /** Registry blob bytes (a pass through the supernode may read none: its chunks can come from the supernode's cache). */
  blobBytes: number;
  /** A pass through the supernode: the chunk bytes its agent fetched (any source) over stargz's registry bytes. */
  agentBytes?: number;
}

/** Result of {@link runContainerdBench}: the passes that ran, and the ratios of those. */
export interface ContainerdBenchResult {
  rateMbit: number;
  prefetch: "on" | "off";
  baseline?: ContainerdPassFigures;
  shoal?: ContainerdPassFigures;
  /** The pass named shoal-recording. */
  shoalRecording?: ContainerdFleetFigures;
  /** The pass named shoal-fleet-trace. */
  shoalFleetTrace?: ContainerdFleetFigures;
  stargz?: ContainerdPassFigures & {
    /** Which eStargz copy was pulled. */
    form: EstargzForm;
    /** Of the optimized form: how many files the optimizer put first. */
    prioritizedFiles?: number;
  };
  /** baseline.totalSec / shoal.totalSec. */
  speedup?: number;
  /** baseline.totalSec / shoalRecording.totalSec. */
  recordingSpeedup?: number;
  /** baseline.totalSec / shoalFleetTrace.totalSec. */
  fleetTraceSpeedup?: number;
  /** baseline.totalSec / stargz.totalSec. */
  stargzSpeedup?: number;
  /** shoal's times over stargz's (below 1: shoal is faster). */
  shoalOverStargz?: OverStargz;
  /** shoal-recording's times over stargz's. */
  recordingOverStargz?: OverStargz;
  /** shoal-fleet-trace's times over stargz's (`totalSec`: fleet-trace total / stargz total). */
  fleetTraceOverStargz?: OverStargz;
}

const WORK_PREFIX = "shoal-bench-containerd-";
const sec = (t0: number) => (performance.now() - t0) / 1000;

/** `ctr run` of the first work in a container of `ref` on `snapshotter`, on the host's network; the container is gone afterwards. */
async function firstWorkInContainer(containerd: RunningContainerd, ref: string, snapshotter: string, id: string): Promise<FirstWorkResult> {
  const ctr = ["--address", containerd.address, "-n", "k8s.io"];
  try {
    return await runFirstWorkCommand("ctr", (port) => [
      ...ctr, "run", "--rm", "--net-host", "--snapshotter", snapshotter, ref, id, "sh", "-c", FIRST_WORK_CONTAINER_SCRIPT, "sh", String(port),
    ]);
  } finally {
    // a run that failed or timed out leaves its task and container: end both
    await run("ctr", [...ctr, "task", "kill", "-s", "SIGKILL", id]).catch(() => undefined);
    await run("ctr", [...ctr, "task", "delete", "-f", id]).catch(() => undefined);
    await run("ctr", [...ctr, "container", "delete", id]).catch(() => undefined);
  }
}

/** Waits until the registry has answered no request for `quietMs` (at most `timeoutMs`): what an earlier pass still fetches in the background must not count for the next one. */
async function quiesce(reg: NetnsRegistry, log: (s: string) => void, quietMs = 2000, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await reg.settle();
  let seen = reg.stats().requests.length;
  let quietSince = Date.now();
  while (Date.now() - quietSince < quietMs) {
    if (Date.now() > deadline) {
      log(`  the registry still answers requests after ${timeoutMs / 1000} s; measuring anyway`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
    await reg.settle();
    const n = reg.stats().requests.length;
    if (n !== seen) {
      seen = n;
      quietSince = Date.now();
    }
  }
}

async function pass(
  reg: NetnsRegistry, containerd: RunningContainerd, repo: string, tag: string, snapshotter: string,
  pull: (ref: string) => Promise<unknown>, log: (s: string) => void, containerId = `bench-${snapshotter}`,
): Promise<ContainerdPassFigures> {
  const ref = `${reg.host}/${repo}:${tag}`;
  const imageBytes = await layerBytes(reg, repo, tag);
  await quiesce(reg, log);
  reg.resetStats();
  const t0 = performance.now();
  await pull(ref);
  const pullSec = sec(t0);
  log(`  pulled in ${pullSec.toFixed(2)} s; ctr run --snapshotter ${snapshotter}`);
  const fw = await firstWorkInContainer(containerd, ref, snapshotter, containerId);
  // until nginx answered; removing the container afterwards is not part of it
  const totalSec = pullSec + fw.totalSec;
  await reg.settle();
  const st = reg.stats();
  return {
    pullSec, runSec: fw.totalSec, pythonSec: fw.pythonSec, totalSec,
    blobBytes: st.blobBytes, blobRequests: st.blobRequests, shareOfImage: st.blobBytes / imageBytes, imageBytes,
  };
}

/** What a pass through the supernode shares with the rest of the run. */
interface FleetPassContext {
  reg: NetnsRegistry;
  repo: string;
  work: string;
  /** The hosts.toml directory the CRI plugin reaches the registry through. */
  certs: string;
  supernode: string;
  shoal: ReturnType<typeof shoalCli>;
  log: (s: string) => void;
}

/**
 * One pass through the supernode, all of its own: a fresh agent (empty root) with `--supernode`,
 * a fresh containerd with it as proxy snapshotter "shoal" (and CRI's snapshotter), shoal pull via CRI
 * + ctr run, as the shoal pass. With `recording`, then waits (not measured) until the supernode
 * holds the image's startup trace, which the agent sends when its startup window ends. Stops both
 * and unmounts what they left, also on failure.
 */
async function fleetPass(ctx: FleetPassContext, name: string, prefetch: "on" | "off", recording: boolean): Promise<ContainerdFleetFigures> {
  const { reg, repo, log } = ctx;
  const dir = join(ctx.work, name);
  const root = join(dir, "shoal");
  await mkdir(root, { recursive: true });
  liveMountRoots.add(dir);
  let agent: ShoalDaemon | undefined;
  let containerd: RunningContainerd | undefined;
  try {
    agent = await ctx.shoal.daemon([
      "agent", "--root", root, "--plain-http", "--prefetch", prefetch, "--supernode", ctx.supernode, "--startup-window", "10s",
      "--log-level", process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "info",
    ], { logFile: join(dir, "agent.log"), ready: { socket: join(root, "snapshotter.sock") } });
    containerd = await startContainerd(join(dir, "containerd"), {
      snapshotters: { shoal: join(root, "snapshotter.sock") }, criSnapshotter: "shoal", criRegistryConfigPath: ctx.certs,
    });
    const address = containerd.address;
    log(`${name}: fresh containerd + fresh agent (prefetch ${prefetch}, supernode ${ctx.supernode}); shoal pull + ctr run --snapshotter shoal`);
    const f = await pass(reg, containerd, repo, "v1-lazy", "shoal", (ref) => ctx.shoal.cliOk(["pull", "--address", address, ref]), log, `bench-${name}`);
    const st = await agentFetched(ctx.shoal.cliOk, root);
    log(`  agent: ${(st.bytes / 2 ** 20).toFixed(1)} MiB fetched, startup ${st.startup ?? "-"}${st.startupChunks !== undefined ? ` (${st.startupChunks} chunks)` : ""}`);
    const figures: ContainerdFleetFigures = {
      ...f, prefetch, agentBytes: st.bytes,
      ...(st.startup !== undefined ? { startup: st.startup } : {}), ...(st.startupChunks !== undefined ? { startupChunks: st.startupChunks } : {}),
      ...(st.digest !== undefined ? { digest: st.digest } : {}),
    };
    if (recording) {
      if (!st.digest) throw new Error(`${name}: \`shoal status\` lists no image in use; no trace to wait for`);
      log(`  waiting (not measured) for the startup trace of ${repo}@${st.digest} at ${ctx.supernode}`);
      const t0 = performance.now();
      if (!(await waitForTrace(ctx.supernode, reg, repo, st.digest, 60_000))) {
        throw new Error(`${name}: no startup trace of ${repo}@${st.digest} at ${ctx.supernode} 60 s after the run; the agent's log ends:\n${agent.logs().slice(-3000)}`);
      }
      figures.traceWaitSec = sec(t0);
      log(`  the supernode holds the trace (${figures.traceWaitSec.toFixed(1)} s after the run)`);
    }
    return figures;
  } finally {
    await containerd?.stop();
    if (agent) await stopProcess(agent.child, 15_000);
    // SHOAL_BENCH_LOG_DIR keeps the agent's log for a closer look
    if (process.env.SHOAL_BENCH_LOG_DIR && agent) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, `agent-containerd-${name}.log`), agent.logs());
    // the agent's snapshots stay mounted after it stops (the FUSE keeper holds them): end both
    if (await unmountAllUnder(dir)) liveMountRoots.delete(dir);
    else log(`warning: mounts left under ${dir}`);
  }
}

const overStargz = (f: ContainerdPassFigures | ContainerdFleetFigures, s: ContainerdPassFigures): OverStargz => ({
  pullSec: f.pullSec / s.pullSec, runSec: f.runSec / s.runSec, totalSec: f.totalSec / s.totalSec, blobBytes: f.blobBytes / s.blobBytes,
  ...("agentBytes" in f ? { agentBytes: f.agentBytes / s.blobBytes } : {}),
});

/**
 * Builds (or loads) the realistic image and its eStargz copy, serves both
 * from a registry in a network namespace capped at `rateMbit`, starts
 * containerd with a shoal agent and a stargz daemon as its proxy
 * snapshotters, and measures the passes in one run; the passes through the
 * supernode (started in the registry's namespace) bring a containerd and an
 * agent of their own each. Cleans up everything it created (containers,
 * containerds, agents, supernode, stargz daemon, mounts, namespace, temp
 * dirs), also on failure.
 */
export async function runContainerdBench(opts: ContainerdBenchOptions = {}): Promise<ContainerdBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const rateMbit = opts.rateMbit ?? 100;
  const prefetch = opts.prefetch ?? "off";
  const passes = new Set<ContainerdPass>(opts.only ?? CONTAINERD_PASSES);
  if (passes.size === 0) throw new Error("no pass to run");
  if (passes.has("shoal-fleet-trace") && !passes.has("shoal-recording")) {
    log("shoal-fleet-trace needs the trace shoal-recording leaves at the supernode: running shoal-recording too");
    passes.add("shoal-recording");
  }
  const fleet = passes.has("shoal-recording") || passes.has("shoal-fleet-trace");
  const shoal = shoalCli(opts.cli ?? DEFAULT_CLI);
  const { cliOk, daemon } = shoal;
  installExitHook();
  const restoreProxies = withoutProxies();
  const image = await realisticImage(log);
  // setup of the stargz pass, before anything runs: the daemon and the eStargz copy (both cached)
  let stargzBinary: string | undefined;
  let esgz: EstargzImage | undefined;
  if (passes.has("stargz")) {
    stargzBinary = (await buildStargzSnapshotter(log)).binary;
    const form = opts.stargzForm ?? "optimized";
    try {
      esgz = await estargzImage(image, form, log);
    } catch (err) {
      if (form !== "optimized") throw err;
      log(`stargz: the optimized form failed (${(err as Error).message.split("\n")[0]}); using plain eStargz`);
      esgz = await estargzImage(image, "estargz", log);
    }
  }

  let ns: Netns | undefined;
  let reg: NetnsRegistry | undefined;
  let containerd: RunningContainerd | undefined;
  let agent: Awaited<ReturnType<typeof daemon>> | undefined;
  let stargz: StargzDaemon | undefined;
  let supernode: ShoalDaemon | undefined;
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  try {
    ns = await createNetns({ rateMbit });
    reg = await startNetnsRegistry(ns);
    const repo = "bench/realistic";
    log(`registry ${reg.host} in netns ${ns.name}, capped at ${rateMbit} Mbit/s; pushing and converting (setup)`);
    if (passes.has("baseline") || passes.has("shoal") || fleet) await pushLayout(image.layoutDir, image.tag, `${reg.host}/${repo}:v1`);
    if (passes.has("shoal") || fleet) await cliOk(["convert", "--plain-http", "--no-cache", `${reg.host}/${repo}:v1`, `${reg.host}/${repo}:v1-lazy`]);
    if (esgz) await pushLayout(esgz.layoutDir, esgz.tag, `${reg.host}/${repo}:${esgz.tag}`);

    const snapshotters: Record<string, string> = {};
    if (passes.has("shoal")) {
      const root = join(work, "shoal");
      await mkdir(root, { recursive: true });
      liveMountRoots.add(root);
      agent = await daemon(["agent", "--root", root, "--plain-http", "--prefetch", prefetch, "--log-level", process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "warn"], {
        logFile: join(work, "agent.log"), ready: { socket: join(root, "snapshotter.sock") },
      });
      snapshotters.shoal = join(root, "snapshotter.sock");
    }
    if (stargzBinary) {
      // a fresh root: nothing cached; only the netns registry, over plain HTTP
      stargz = await startStargzSnapshotter({ binary: stargzBinary, root: join(work, "stargz"), plainHttpHosts: [reg.host] });
      snapshotters.stargz = stargz.socket;
    }
    // the CRI plugin (shoal pull) reaches the plain-HTTP registry through a hosts.toml
    const certs = join(work, "certs.d");
    await mkdir(join(certs, reg.host), { recursive: true });
    await writeFile(join(certs, reg.host, "hosts.toml"), `server = "${reg.url}"\n[host."${reg.url}"]\n  capabilities = ["pull", "resolve"]\n`);
    containerd = await startContainerd(join(work, "containerd"), {
      snapshotters, criSnapshotter: passes.has("shoal") ? "shoal" : "overlayfs", criRegistryConfigPath: certs,
    });
    const address = containerd.address;

    const r: ContainerdBenchResult = { rateMbit, prefetch };
    if (passes.has("baseline")) {
      log("baseline: ctr image pull (overlayfs) + ctr run");
      r.baseline = await pass(reg, containerd, repo, "v1", "overlayfs",
        (ref) => run("ctr", ["--address", address, "-n", "k8s.io", "image", "pull", "--plain-http", ref]), log);
    }
    if (passes.has("shoal")) {
      log("shoal: shoal pull + ctr run --snapshotter shoal");
      r.shoal = await pass(reg, containerd, repo, "v1-lazy", "shoal",
        (ref) => cliOk(["pull", "--address", address, ref]), log);
    }
    if (fleet) {
      const far = await startBenchSupernode(shoal.daemon, reg, join(work, "supernode"), ns);
      supernode = far.daemon;
      log(`supernode ${far.url} in the registry's namespace (the agents reach it over the capped link)`);
      const ctx: FleetPassContext = { reg, repo, work, certs, supernode: far.url, shoal, log };
      r.shoalRecording = await fleetPass(ctx, "shoal-recording", "off", true);
      if (passes.has("shoal-fleet-trace")) r.shoalFleetTrace = await fleetPass(ctx, "shoal-fleet-trace", "on", false);
      await stopProcess(supernode.child, 15_000);
      if (process.env.SHOAL_BENCH_LOG_DIR) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, "supernode-containerd.log"), supernode.logs());
      supernode = undefined;
    }
    if (esgz) {
      log(`stargz: ctr-remote image rpull (${ESTARGZ_FORMS[esgz.form]}) + ctr run --snapshotter stargz`);
      const f = await pass(reg, containerd, repo, esgz.tag, "stargz",
        (ref) => run("ctr-remote", ["--address", address, "-n", "k8s.io", "image", "rpull", "--plain-http", ref]), log);
      r.stargz = { ...f, form: esgz.form, ...(esgz.prioritizedFiles !== undefined ? { prioritizedFiles: esgz.prioritizedFiles } : {}) };
    }
    if (r.baseline && r.shoal) r.speedup = r.baseline.totalSec / r.shoal.totalSec;
    if (r.baseline && r.shoalRecording) r.recordingSpeedup = r.baseline.totalSec / r.shoalRecording.totalSec;
    if (r.baseline && r.shoalFleetTrace) r.fleetTraceSpeedup = r.baseline.totalSec / r.shoalFleetTrace.totalSec;
    if (r.baseline && r.stargz) r.stargzSpeedup = r.baseline.totalSec / r.stargz.totalSec;
    if (r.shoal && r.stargz) r.shoalOverStargz = overStargz(r.shoal, r.stargz);
    if (r.shoalRecording && r.stargz) r.recordingOverStargz = overStargz(r.shoalRecording, r.stargz);
    if (r.shoalFleetTrace && r.stargz) r.fleetTraceOverStargz = overStargz(r.shoalFleetTrace, r.stargz);
    return r;
  } finally {
    await containerd?.stop();
    if (agent) await stopProcess(agent.child, 15_000);
    if (supernode) await stopProcess(supernode.child, 15_000);
    await stargz?.stop();
    // SHOAL_BENCH_LOG_DIR keeps the agent's and the stargz daemon's logs for a closer look
    if (process.env.SHOAL_BENCH_LOG_DIR) {
      if (agent) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, "agent-containerd.log"), agent.logs());
      if (stargz) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, "stargz-containerd.log"), stargz.logs());
    }
    await reg?.stop();
    await ns?.destroy();
    // the agent's snapshots stay mounted after it stops (the FUSE keeper holds them): end both
    await unmountAllUnder(work);
    await removeWorkDir(work, log);
    restoreProxies();
  }
}

/** Human-readable lines for a result. */
export function formatContainerdBench(r: ContainerdBenchResult): string[] {
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  const side = (name: string, f: ContainerdPassFigures) => [
    `  ${name}: ${f.totalSec.toFixed(2)} s  (pull ${f.pullSec.toFixed(2)} s, ctr run to first work ${f.runSec.toFixed(2)} s, python imports at ${f.pythonSec.toFixed(2)} s of it)`,
    `    registry blob bytes: ${mib(f.blobBytes)} in ${f.blobRequests} requests = ${(f.shareOfImage * 100).toFixed(1)}% of the image (${mib(f.imageBytes)})`,
  ];
  const x = (n: number) => `${n.toFixed(2)}x`;
  const fleetSide = (name: string, f: ContainerdFleetFigures) => [
    ...side(name, f),
    `    agent fetched ${mib(f.agentBytes)} by the end of the run; startup chunks ${f.startup ? `${f.startupChunks ?? 0} from ${f.startup}` : "none (no prefetch)"}`
      + `${f.traceWaitSec !== undefined ? `; trace at the supernode ${f.traceWaitSec.toFixed(1)} s after the run` : ""}`,
  ];
  const over = (name: string, o: OverStargz) =>
    `  ${name} / stargz: total ${x(o.totalSec)}, pull ${x(o.pullSec)}, run ${x(o.runSec)}, registry bytes ${x(o.blobBytes)}`
      + `${o.agentBytes !== undefined ? `, agent-fetched bytes ${x(o.agentBytes)}` : ""}  (below 1: ${name} is faster / reads less)`;
  return [
    `containerd: Debian 12 + python3 + nginx, registry at ${r.rateMbit} Mbit/s, agent prefetch ${r.prefetch}`,
    ...(r.baseline ? side("baseline (ctr image pull + ctr run, overlayfs)", r.baseline) : []),
    ...(r.shoal ? side("shoal (shoal pull + ctr run --snapshotter shoal)", r.shoal) : []),
    ...(r.shoalRecording ? fleetSide(`shoal-recording (fresh containerd + agent through the far supernode, prefetch ${r.shoalRecording.prefetch}; records and sends the trace)`, r.shoalRecording) : []),
    ...(r.shoalFleetTrace ? fleetSide(`shoal-fleet-trace (fresh containerd + agent with the fleet's trace, prefetch ${r.shoalFleetTrace.prefetch})`, r.shoalFleetTrace) : []),
    ...(r.stargz ? side(`stargz (ctr-remote image rpull + ctr run --snapshotter stargz; ${ESTARGZ_FORMS[r.stargz.form]}${r.stargz.prioritizedFiles !== undefined ? `, ${r.stargz.prioritizedFiles} files of the first work first` : ""})`, r.stargz) : []),
    ...(r.speedup !== undefined ? [`  speedup, baseline / shoal: ${x(r.speedup)}  (goal >= 10x, under 10% of the image's bytes)`] : []),
    ...(r.recordingSpeedup !== undefined ? [`  speedup, baseline / shoal-recording: ${x(r.recordingSpeedup)}`] : []),
    ...(r.fleetTraceSpeedup !== undefined ? [`  speedup, baseline / shoal-fleet-trace: ${x(r.fleetTraceSpeedup)}`] : []),
    ...(r.stargzSpeedup !== undefined ? [`  speedup, baseline / stargz: ${x(r.stargzSpeedup)}`] : []),
    ...(r.shoalOverStargz ? [over("shoal", r.shoalOverStargz)] : []),
    ...(r.recordingOverStargz ? [over("shoal-recording", r.recordingOverStargz)] : []),
    ...(r.fleetTraceOverStargz ? [over("shoal-fleet-trace", r.fleetTraceOverStargz)] : []),
  ];
}
