// Time to first useful work through containerd, for the realistic image (Debian 12 + python3 + nginx)
// served by a registry behind a capped link, in one run:
//   baseline: ctr image pull (containerd's overlayfs snapshotter, layers downloaded and unpacked)
//             + ctr run of the first work (python imports, nginx answers)
//   shoal:    shoal pull (CRI PullImage: remote snapshots, no layer downloaded)
//             + ctr run --snapshotter shoal of the same first work
//   stargz:   ctr-remote image rpull of an eStargz copy of the image (the stargz snapshotter,
//             built from Debian's packages, as proxy plugin "stargz": remote snapshots over FUSE)
//             + ctr run --snapshotter stargz of the same first work
// containerd 1.6 from Debian, the agent and the stargz daemon are started by the bench with their
// own roots; the registry runs in a network namespace of its own. Pushing and converting are
// setup, not measured.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createNetns, FIRST_WORK_CONTAINER_SCRIPT, mountsUnder, pushLayout, run, runFirstWorkCommand, startContainerd, startNetnsRegistry, unmountAllUnder,
  type FirstWorkResult, type Netns, type NetnsRegistry, type RunningContainerd,
} from "@shoal/testkit";
import { DEFAULT_CLI, layerBytes, shoalCli } from "../shoal-cli.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { installExitHook, liveMountRoots, liveWorkDirs, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import { buildStargzSnapshotter } from "../stargz/build.ts";
import { startStargzSnapshotter, type StargzDaemon } from "../stargz/daemon.ts";
import { ESTARGZ_FORMS, estargzImage, type EstargzForm, type EstargzImage } from "../stargz/estargz.ts";

/** The passes, in the order they run (stargz last: its background fetch of the whole layer must not share the link with another pass). */
export const CONTAINERD_PASSES = ["baseline", "shoal", "stargz"] as const;
export type ContainerdPass = (typeof CONTAINERD_PASSES)[number];

/** Options of {@link runContainerdBench}. */
export interface ContainerdBenchOptions {
  /** Registry link cap, Mbit/s each way. Default 100. */
  rateMbit?: number;
  /** `shoal agent --prefetch`. Default "off". */
  prefetch?: "on" | "off";
  /** The shoal CLI entry. Default: this checkout's. */
  cli?: string;
  /** Passes to run. Default: all of {@link CONTAINERD_PASSES}. */
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

/** Result of {@link runContainerdBench}: the passes that ran, and the ratios of those. */
export interface ContainerdBenchResult {
  rateMbit: number;
  prefetch: "on" | "off";
  baseline?: ContainerdPassFigures;
  shoal?: ContainerdPassFigures;
  stargz?: ContainerdPassFigures & {
    /** Which eStargz copy was pulled. */
    form: EstargzForm;
    /** Of the optimized form: how many files the optimizer put first. */
    prioritizedFiles?: number;
  };
  /** baseline.totalSec / shoal.totalSec. */
  speedup?: number;
  /** baseline.totalSec / stargz.totalSec. */
  stargzSpeedup?: number;
  /** shoal's times over stargz's (below 1: shoal is faster). */
  shoalOverStargz?: { pullSec: number; runSec: number; totalSec: number; blobBytes: number };
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
  pull: (ref: string) => Promise<unknown>, log: (s: string) => void,
): Promise<ContainerdPassFigures> {
  const ref = `${reg.host}/${repo}:${tag}`;
  const imageBytes = await layerBytes(reg, repo, tag);
  await quiesce(reg, log);
  reg.resetStats();
  const t0 = performance.now();
  await pull(ref);
  const pullSec = sec(t0);
  log(`  pulled in ${pullSec.toFixed(2)} s; ctr run --snapshotter ${snapshotter}`);
  const fw = await firstWorkInContainer(containerd, ref, snapshotter, `bench-${snapshotter}`);
  // until nginx answered; removing the container afterwards is not part of it
  const totalSec = pullSec + fw.totalSec;
  await reg.settle();
  const st = reg.stats();
  return {
    pullSec, runSec: fw.totalSec, pythonSec: fw.pythonSec, totalSec,
    blobBytes: st.blobBytes, blobRequests: st.blobRequests, shareOfImage: st.blobBytes / imageBytes, imageBytes,
  };
}

/**
 * Builds (or loads) the realistic image and its eStargz copy, serves both
 * from a registry in a network namespace capped at `rateMbit`, starts
 * containerd with a shoal agent and a stargz daemon as its proxy
 * snapshotters, and measures the passes in one run. Cleans up everything it
 * created (containers, containerd, agent, stargz daemon, mounts, namespace,
 * temp dirs), also on failure.
 */
export async function runContainerdBench(opts: ContainerdBenchOptions = {}): Promise<ContainerdBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const rateMbit = opts.rateMbit ?? 100;
  const prefetch = opts.prefetch ?? "off";
  const passes = new Set<ContainerdPass>(opts.only ?? CONTAINERD_PASSES);
  if (passes.size === 0) throw new Error("no pass to run");
  const { cliOk, daemon } = shoalCli(opts.cli ?? DEFAULT_CLI);
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
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  try {
    ns = await createNetns({ rateMbit });
    reg = await startNetnsRegistry(ns);
    const repo = "bench/realistic";
    log(`registry ${reg.host} in netns ${ns.name}, capped at ${rateMbit} Mbit/s; pushing and converting (setup)`);
    if (passes.has("baseline") || passes.has("shoal")) await pushLayout(image.layoutDir, image.tag, `${reg.host}/${repo}:v1`);
    if (passes.has("shoal")) await cliOk(["convert", "--plain-http", "--no-cache", `${reg.host}/${repo}:v1`, `${reg.host}/${repo}:v1-lazy`]);
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
    if (esgz) {
      log(`stargz: ctr-remote image rpull (${ESTARGZ_FORMS[esgz.form]}) + ctr run --snapshotter stargz`);
      const f = await pass(reg, containerd, repo, esgz.tag, "stargz",
        (ref) => run("ctr-remote", ["--address", address, "-n", "k8s.io", "image", "rpull", "--plain-http", ref]), log);
      r.stargz = { ...f, form: esgz.form, ...(esgz.prioritizedFiles !== undefined ? { prioritizedFiles: esgz.prioritizedFiles } : {}) };
    }
    if (r.baseline && r.shoal) r.speedup = r.baseline.totalSec / r.shoal.totalSec;
    if (r.baseline && r.stargz) r.stargzSpeedup = r.baseline.totalSec / r.stargz.totalSec;
    if (r.shoal && r.stargz) {
      r.shoalOverStargz = {
        pullSec: r.shoal.pullSec / r.stargz.pullSec, runSec: r.shoal.runSec / r.stargz.runSec,
        totalSec: r.shoal.totalSec / r.stargz.totalSec, blobBytes: r.shoal.blobBytes / r.stargz.blobBytes,
      };
    }
    return r;
  } finally {
    await containerd?.stop();
    if (agent) await stopProcess(agent.child, 15_000);
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
    if ((await mountsUnder(work)).length === 0) {
      await rm(work, { recursive: true, force: true });
      liveWorkDirs.delete(work);
    } else {
      log(`left ${work} in place: something is still mounted under it`);
    }
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
  return [
    `containerd: Debian 12 + python3 + nginx, registry at ${r.rateMbit} Mbit/s, agent prefetch ${r.prefetch}`,
    ...(r.baseline ? side("baseline (ctr image pull + ctr run, overlayfs)", r.baseline) : []),
    ...(r.shoal ? side("shoal (shoal pull + ctr run --snapshotter shoal)", r.shoal) : []),
    ...(r.stargz ? side(`stargz (ctr-remote image rpull + ctr run --snapshotter stargz; ${ESTARGZ_FORMS[r.stargz.form]}${r.stargz.prioritizedFiles !== undefined ? `, ${r.stargz.prioritizedFiles} files of the first work first` : ""})`, r.stargz) : []),
    ...(r.speedup !== undefined ? [`  speedup, baseline / shoal: ${x(r.speedup)}  (goal >= 10x, under 10% of the image's bytes)`] : []),
    ...(r.stargzSpeedup !== undefined ? [`  speedup, baseline / stargz: ${x(r.stargzSpeedup)}`] : []),
    ...(r.shoalOverStargz ? [
      `  shoal / stargz: total ${x(r.shoalOverStargz.totalSec)}, pull ${x(r.shoalOverStargz.pullSec)}, run ${x(r.shoalOverStargz.runSec)}, registry bytes ${x(r.shoalOverStargz.blobBytes)}  (below 1: shoal is faster / reads less)`,
    ] : []),
  ];
}
