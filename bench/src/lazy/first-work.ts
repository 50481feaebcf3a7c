// Time to first useful work for a realistic image (Debian 12 + python3 + nginx)
// served by a registry behind a 100 Mbit/s link, in one run:
//   baseline: skopeo copy + umoci unpack + first work (python imports, nginx answers)
//   shoal:    shoal mount (lazy) + the same first work
// The registry runs in a network namespace of its own (testkit createNetns);
// pushing and converting are setup and not measured.
import { mkdtemp, mkdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_CLI, layerBytes, shoalCli } from "../shoal-cli.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { installExitHook, liveMountRoots, liveWorkDirs, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import {
  createNetns, mountsUnder, pushLayout, run, runFirstWork, startNetnsRegistry, umociUnpack, unmountAllUnder,
  type FirstWorkResult, type Netns, type NetnsRegistry, type RealisticImage,
} from "@shoal/testkit";


/** Options of {@link runFirstWorkBench}. */
export interface FirstWorkBenchOptions {
  /** Where the realistic image is built and cached. Default `$SHOAL_BENCH_CACHE` or `<repo>/.cache/realistic-image`. */
  cacheDir?: string;
  /** Registry link cap, Mbit/s each way. Default 100. */
  rateMbit?: number;
  /** `shoal agent --prefetch`. Default "off" (bytes before first work are then on-demand reads only). */
  prefetch?: "on" | "off";
  /** `shoal convert --chunk-size` (uncompressed bytes per chunk). Default: shoal's default. */
  chunkSize?: number;
  /** Skip the shoal half. */
  baselineOnly?: boolean;
  /** The shoal CLI entry (run with this Node). Default: this checkout's cli/src/main.ts. */
  cli?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

/** The baseline: full pull, unpack, then first work. Seconds from the start of the pull. */
export interface BaselineFigures {
  pullSec: number;
  unpackSec: number;
  /** First work alone (python imports + nginx answering). */
  firstWorkSec: number;
  /** Pull + unpack + first work. */
  totalSec: number;
  /** Registry blob body bytes (config + layers). */
  blobBytes: number;
  blobRequests: number;
}

/** One shoal pass: how the image is converted and the agent run. */
interface ShoalPass {
  tag: string;
  prefetch: "on" | "off";
  chunkSize?: number;
  /** Embed this startup order when converting. */
  startupOrderIn?: string;
  /** Export the startup order the agent recorded to this file. */
  startupOrderOut?: string;
}

/** shoal: lazy mount, then first work. */
export interface ShoalFigures {
  /** `shoal mount` alone (the pull: metadata only). */
  mountSec: number;
  firstWorkSec: number;
  /** Mount + first work. */
  totalSec: number;
  /** Registry blob body bytes from the mount until first work was done. */
  blobBytes: number;
  blobRequests: number;
  /** `blobBytes` / the original image's compressed layer bytes. */
  shareOfImage: number;
  /** Compressed layer bytes of the converted (lazy) image. */
  lazyImageBytes: number;
  prefetch: "on" | "off";
  /** What `shoal mount` printed (pull time, bytes fetched). */
  mountOutput: string;
}

/** Result of {@link runFirstWorkBench}. */
export interface FirstWorkBenchResult {
  image: Pick<RealisticImage, "compressedBytes" | "uncompressedBytes" | "manifestDigest" | "cached" | "version">;
  rateMbit: number;
  baseline: BaselineFigures;
  /** Figures, or why the shoal half did not run. */
  shoal: ShoalFigures | { skipped: string };
  /** baseline.totalSec / shoal.totalSec, when both ran. */
  speedup: number | undefined;
  /** A second shoal pass on a fresh agent, the image converted with the startup order the first pass recorded. */
  traced?: ShoalFigures;
  tracedSpeedup?: number;
}

const sec = (t0: number) => (performance.now() - t0) / 1000;

let CLI = DEFAULT_CLI;
let { cli, cliOk, daemon } = shoalCli(CLI);





const WORK_PREFIX = "shoal-bench-firstwork-";

async function runBaseline(reg: NetnsRegistry, ref: string, work: string, log: (s: string) => void): Promise<BaselineFigures> {
  const oci = join(work, "baseline-oci");
  const bundle = join(work, "baseline-bundle");
  reg.resetStats();
  log("baseline: skopeo copy + umoci unpack + first work");
  const t0 = performance.now();
  await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${ref}`, `oci:${oci}:v1`]);
  const pullSec = sec(t0);
  const { rootfs } = await umociUnpack(oci, "v1", bundle);
  const unpackSec = sec(t0) - pullSec;
  const fw: FirstWorkResult = await runFirstWork(rootfs);
  const totalSec = sec(t0);
  await reg.settle();
  const st = reg.stats();
  await rm(oci, { recursive: true, force: true });
  await rm(bundle, { recursive: true, force: true });
  return { pullSec, unpackSec, firstWorkSec: fw.totalSec, totalSec, blobBytes: st.blobBytes, blobRequests: st.blobRequests };
}

async function runShoal(
  reg: NetnsRegistry, src: string, repo: string, image: RealisticImage, work: string, log: (s: string) => void, pass: ShoalPass,
): Promise<ShoalFigures | { skipped: string }> {
  const { prefetch, chunkSize } = pass;
  const help = await cli(["agent", "--help"]);
  if (help.code !== 0) return { skipped: "`shoal agent` does not exist yet (`shoal agent --help` exits non-zero)" };
  const mountHelp = await cli(["mount", "--help"]);
  if (mountHelp.code !== 0) return { skipped: "`shoal mount` does not exist yet (`shoal mount --help` exits non-zero)" };

  const lazyTag = pass.tag;
  const lazyRef = `${reg.host}/${repo}:${lazyTag}`;
  log("shoal: converting (setup, not measured)");
  await cliOk(["convert", "--plain-http", "--no-cache", ...(chunkSize ? ["--chunk-size", String(chunkSize)] : []), ...(pass.startupOrderIn ? ["--startup-order", pass.startupOrderIn] : []), src, lazyRef]);
  const lazyImageBytes = await layerBytes(reg, repo, lazyTag);

  const root = join(work, `shoal-root-${lazyTag}`);
  const mnt = join(work, `shoal-mnt-${lazyTag}`);
  await mkdir(root, { recursive: true });
  await mkdir(mnt, { recursive: true });
  liveMountRoots.add(root);
  liveMountRoots.add(mnt);
  const args = ["agent", "--root", root, "--plain-http", "--prefetch", prefetch, "--startup-window", "10s", "--log-level", process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "info"];
  const agent = await daemon(args, { logFile: join(work, `agent-${lazyTag}.log`), ready: { socket: join(root, "agent.sock") } });
  let mounted = false;
  try {

    reg.resetStats();
    log(`shoal: mount + first work (prefetch ${prefetch})`);
    const t0 = performance.now();
    mounted = true;
    const mountOutput = await cliOk(["mount", "--root", root, lazyRef, mnt]);
    const mountSec = sec(t0);
    const fw = await runFirstWork(mnt);
    const totalSec = sec(t0);
    await reg.settle();
    const st = reg.stats();
    if (pass.startupOrderOut) {
      await new Promise((r) => setTimeout(r, Math.max(0, 10_500 - (performance.now() - t0)))); // the agent saves its record when the startup window ends
      await writeFile(pass.startupOrderOut, await cliOk(["startup-order", "--root", root, mnt]));
    }
    return {
      mountSec, firstWorkSec: fw.totalSec, totalSec, blobBytes: st.blobBytes, blobRequests: st.blobRequests,
      shareOfImage: st.blobBytes / image.compressedBytes, lazyImageBytes, prefetch, mountOutput: mountOutput.trim(),
    };
  } finally {
    if (mounted) {
      const u = await cli(["umount", "--root", root, mnt]);
      if (u.code !== 0) log(`shoal umount failed (${u.code}): ${u.stderr.trim()}`);
    }
    await stopProcess(agent.child, 15_000);
    // SHOAL_BENCH_LOG_DIR keeps the agent's log of each pass for a closer look
    if (process.env.SHOAL_BENCH_LOG_DIR) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, `agent-${lazyTag}.log`), agent.logs());
    const clean = (await unmountAllUnder(mnt)) && (await unmountAllUnder(root));
    if (clean) {
      liveMountRoots.delete(root);
      liveMountRoots.delete(mnt);
    } else {
      log(`warning: mounts left under ${work}`);
    }
  }
}

/**
 * Builds (or loads) the realistic image, serves it from a registry in a
 * network namespace capped at `rateMbit`, and measures time to first useful
 * work for the baseline and for shoal in one run. Cleans up everything it
 * created (namespace, registry, agent, mounts, temp dirs), also on failure.
 */
export async function runFirstWorkBench(opts: FirstWorkBenchOptions = {}): Promise<FirstWorkBenchResult> {
  const log = opts.log ?? ((s: string) => console.error(s));
  const rateMbit = opts.rateMbit ?? 100;
  const prefetch = opts.prefetch ?? "off";
  CLI = opts.cli ?? DEFAULT_CLI;
  ({ cli, cliOk, daemon } = shoalCli(CLI));
  installExitHook();
  const restoreProxies = withoutProxies();

  const image = await realisticImage(log, opts.cacheDir);
  log(`image: ${(image.compressedBytes / 2 ** 20).toFixed(1)} MiB compressed, ${(image.uncompressedBytes / 2 ** 20).toFixed(1)} MiB uncompressed${image.cached ? " (cached)" : ""}`);

  let ns: Netns | undefined;
  let reg: NetnsRegistry | undefined;
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  let workClean = true;
  try {
    ns = await createNetns({ rateMbit });
    reg = await startNetnsRegistry(ns);
    const repo = "bench/realistic";
    const src = `${reg.host}/${repo}:v1`;
    log(`registry ${reg.host} in netns ${ns.name}, capped at ${rateMbit} Mbit/s; pushing (setup)`);
    await pushLayout(image.layoutDir, image.tag, src);

    const baseline = await runBaseline(reg, src, work, log);
    let shoal: ShoalFigures | { skipped: string };
    let traced: ShoalFigures | undefined;
    if (opts.baselineOnly) {
      shoal = { skipped: "baseline only was asked for" };
    } else {
      try {
        const order = join(work, "startup-order.json");
        shoal = await runShoal(reg, src, repo, image, work, log, { tag: "v1-shoal", prefetch, chunkSize: opts.chunkSize, startupOrderOut: order });
        if (!("skipped" in shoal)) {
          const t = await runShoal(reg, src, repo, image, work, log, { tag: "v1-traced", prefetch: "on", chunkSize: opts.chunkSize, startupOrderIn: order });
          if (!("skipped" in t)) traced = t;
        }
      } finally {
        workClean = (await mountsUnder(work)).length === 0;
      }
    }
    return {
      image: { compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes, manifestDigest: image.manifestDigest, cached: image.cached, version: image.version },
      rateMbit,
      baseline,
      shoal,
      speedup: "skipped" in shoal ? undefined : baseline.totalSec / shoal.totalSec,
      ...(traced ? { traced, tracedSpeedup: baseline.totalSec / traced.totalSec } : {}),
    };
  } finally {
    await reg?.stop();
    await ns?.destroy();
    if (workClean) {
      await rm(work, { recursive: true, force: true });
      liveWorkDirs.delete(work);
    }
    else log(`left ${work} in place: something is still mounted under it`);
    restoreProxies();
  }
}

/** Human-readable lines for a result. */
export function formatFirstWork(r: FirstWorkBenchResult): string[] {
  const MiB = 2 ** 20;
  const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  const lines = [
    `first-work: Debian 12 + python3 + nginx, ${mib(r.image.compressedBytes)} compressed / ${mib(r.image.uncompressedBytes)} uncompressed, registry at ${r.rateMbit} Mbit/s`,
    `  baseline (skopeo copy + umoci unpack + first work): ${r.baseline.totalSec.toFixed(2)} s`
      + `  (pull ${r.baseline.pullSec.toFixed(2)} s, unpack ${r.baseline.unpackSec.toFixed(2)} s, first work ${r.baseline.firstWorkSec.toFixed(2)} s)`,
    `    registry blob bytes: ${mib(r.baseline.blobBytes)} in ${r.baseline.blobRequests} requests`,
  ];
  if ("skipped" in r.shoal) {
    lines.push(`  shoal: skipped: ${r.shoal.skipped}`);
  } else {
    const s = r.shoal;
    lines.push(
      `  shoal (mount + first work, prefetch ${s.prefetch}): ${s.totalSec.toFixed(2)} s  (mount ${s.mountSec.toFixed(2)} s, first work ${s.firstWorkSec.toFixed(2)} s)`,
      `    registry blob bytes before first work: ${mib(s.blobBytes)} in ${s.blobRequests} requests = ${(s.shareOfImage * 100).toFixed(1)}% of the image (lazy image ${mib(s.lazyImageBytes)})`,
      `    shoal mount said: ${s.mountOutput.split("\n").join(" | ")}`,
      `  speedup: ${r.speedup!.toFixed(2)}x  (baseline / shoal time to first useful work)`,
    );
    if (r.traced) {
      const t = r.traced;
      lines.push(
        `  shoal with the recorded startup order in the image (fresh agent, prefetch on): ${t.totalSec.toFixed(2)} s  (mount ${t.mountSec.toFixed(2)} s, first work ${t.firstWorkSec.toFixed(2)} s)`,
        `    registry blob bytes by first work done: ${mib(t.blobBytes)} in ${t.blobRequests} requests = ${(t.shareOfImage * 100).toFixed(1)}% of the image (prefetch streams on behind it)`,
        `  speedup with startup order: ${r.tracedSpeedup!.toFixed(2)}x`,
      );
    }
  }
  return lines;
}
