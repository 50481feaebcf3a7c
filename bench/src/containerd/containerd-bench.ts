// Time to first useful work through containerd, for the realistic image (Debian 12 + python3 + nginx)
// served by a registry behind a capped link, in one run:
//   baseline: ctr image pull (containerd's overlayfs snapshotter, layers downloaded and unpacked)
//             + ctr run of the first work (python imports, nginx answers)
//   shoal:    shoal pull (CRI PullImage: remote snapshots, no layer downloaded)
//             + ctr run --snapshotter shoal of the same first work
// containerd 1.6 from Debian and the agent are started by the bench with their own roots; the
// registry runs in a network namespace of its own. Pushing and converting are setup, not measured.
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

/** Options of {@link runContainerdBench}. */
export interface ContainerdBenchOptions {
  /** Registry link cap, Mbit/s each way. Default 100. */
  rateMbit?: number;
  /** `shoal agent --prefetch`. Default "off". */
  prefetch?: "on" | "off";
  /** The shoal CLI entry. Default: this checkout's. */
  cli?: string;
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

/** Result of {@link runContainerdBench}. */
export interface ContainerdBenchResult {
  rateMbit: number;
  prefetch: "on" | "off";
  baseline: ContainerdPassFigures;
  shoal: ContainerdPassFigures;
  /** baseline.totalSec / shoal.totalSec. */
  speedup: number;
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

async function pass(
  reg: NetnsRegistry, containerd: RunningContainerd, repo: string, tag: string, snapshotter: string,
  pull: (ref: string) => Promise<unknown>, log: (s: string) => void,
): Promise<ContainerdPassFigures> {
  const ref = `${reg.host}/${repo}:${tag}`;
  const imageBytes = await layerBytes(reg, repo, tag);
  await reg.settle();
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
 * Builds (or loads) the realistic image, serves it from a registry in a
 * network namespace capped at `rateMbit`, starts containerd and a shoal agent
 * as its snapshotter, and measures both sides in one run. Cleans up
 * everything it created (containers, containerd, agent, mounts, namespace,
 * temp dirs), also on failure.
 */
export async function runContainerdBench(opts: ContainerdBenchOptions = {}): Promise<ContainerdBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const rateMbit = opts.rateMbit ?? 100;
  const prefetch = opts.prefetch ?? "off";
  const { cliOk, daemon } = shoalCli(opts.cli ?? DEFAULT_CLI);
  installExitHook();
  const restoreProxies = withoutProxies();
  const image = await realisticImage(log);

  let ns: Netns | undefined;
  let reg: NetnsRegistry | undefined;
  let containerd: RunningContainerd | undefined;
  let agent: Awaited<ReturnType<typeof daemon>> | undefined;
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  try {
    ns = await createNetns({ rateMbit });
    reg = await startNetnsRegistry(ns);
    const repo = "bench/realistic";
    log(`registry ${reg.host} in netns ${ns.name}, capped at ${rateMbit} Mbit/s; pushing and converting (setup)`);
    await pushLayout(image.layoutDir, image.tag, `${reg.host}/${repo}:v1`);
    await cliOk(["convert", "--plain-http", "--no-cache", `${reg.host}/${repo}:v1`, `${reg.host}/${repo}:v1-lazy`]);

    const root = join(work, "shoal");
    await mkdir(root, { recursive: true });
    liveMountRoots.add(root);
    agent = await daemon(["agent", "--root", root, "--plain-http", "--prefetch", prefetch, "--log-level", process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "warn"], {
      logFile: join(work, "agent.log"), ready: { socket: join(root, "snapshotter.sock") },
    });
    // the CRI plugin (shoal pull) reaches the plain-HTTP registry through a hosts.toml
    const certs = join(work, "certs.d");
    await mkdir(join(certs, reg.host), { recursive: true });
    await writeFile(join(certs, reg.host, "hosts.toml"), `server = "${reg.url}"\n[host."${reg.url}"]\n  capabilities = ["pull", "resolve"]\n`);
    containerd = await startContainerd(join(work, "containerd"), {
      snapshotters: { shoal: join(root, "snapshotter.sock") }, criSnapshotter: "shoal", criRegistryConfigPath: certs,
    });
    const address = containerd.address;

    log("baseline: ctr image pull (overlayfs) + ctr run");
    const baseline = await pass(reg, containerd, repo, "v1", "overlayfs",
      (ref) => run("ctr", ["--address", address, "-n", "k8s.io", "image", "pull", "--plain-http", ref]), log);
    log("shoal: shoal pull + ctr run --snapshotter shoal");
    const shoal = await pass(reg, containerd, repo, "v1-lazy", "shoal",
      (ref) => cliOk(["pull", "--address", address, ref]), log);
    return { rateMbit, prefetch, baseline, shoal, speedup: baseline.totalSec / shoal.totalSec };
  } finally {
    await containerd?.stop();
    if (agent) await stopProcess(agent.child, 15_000);
    // SHOAL_BENCH_LOG_DIR keeps the agent's log for a closer look
    if (agent && process.env.SHOAL_BENCH_LOG_DIR) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, "agent-containerd.log"), agent.logs());
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
  return [
    `containerd: Debian 12 + python3 + nginx, registry at ${r.rateMbit} Mbit/s, agent prefetch ${r.prefetch}`,
    ...side("baseline (ctr image pull + ctr run, overlayfs)", r.baseline),
    ...side("shoal (shoal pull + ctr run --snapshotter shoal)", r.shoal),
    `  speedup: ${r.speedup.toFixed(2)}x  (goal >= 10x, under 10% of the image's bytes)`,
  ];
}
