// Time to first useful work for a realistic image (Debian 12 + python3 + nginx)
// served by a registry behind a capped link (100 Mbit/s by default), in one run:
//   baseline: skopeo copy + umoci unpack + first work (python imports, nginx answers)
//   shoal, each pass a fresh agent (empty store) doing shoal mount (lazy) + the same first work:
//     cold        straight from the registry, no trace
//     recording   a first host through a supernode on the registry's side of the link; it sends its trace
//     fleet trace a later host through that supernode: the trace prefetched first (prefetch on)
//     datacenter  a supernode on this side of the link (its cache fills from the registry):
//                 a first host, then a second fresh host (prefetch on)
//     all-local   every chunk in the store (prefetch done), page cache dropped: first work
//                 against the unpacked tree's, also dropped: what the read path itself costs
//     all-local-next  the same after an unmount and a new mount (block mode: from local stream files)
//     metadata-walk   find stating every entry, page cache dropped, against the unpacked tree's
// Every pass runs once per --layer-modes (block, then fuse), each set with fresh supernodes.
// The registry (and the far supernode) run in a network namespace of their own (testkit createNetns);
// pushing and converting are setup and not measured.
import { mkdtemp, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentFetched, DEFAULT_CLI, layerBytes, shoalCli, startBenchSupernode, waitForTrace } from "../shoal-cli.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { installExitHook, liveMountRoots, liveWorkDirs, stopProcess, sweepStaleWorkDirs } from "../leftovers.ts";
import {
  createNetns, mountsUnder, pushLayout, run, runFirstWork, startNetnsRegistry, umociUnpack, unmountAllUnder,
  type FirstWorkResult, type Netns, type NetnsRegistry, type RealisticImage, type ShoalDaemon,
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
  /** More `shoal agent` flags for every pass (e.g. `--whole-file 0`). */
  agentArgs?: string[];
  /**
   * Only these shoal passes (metadata-walk, cold, recording, fleet-trace, dc-first, dc-second, all-local, all-local-next); default all.
   * fleet-trace brings recording (its trace), dc-second brings dc-first (its supernode's cache).
   */
  passes?: string[];
  /** `shoal agent --layer-mode` of each set of passes, in order; every pass runs once per mode, with fresh supernodes. Default block, then fuse. */
  layerModes?: Array<"block" | "fuse">;
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
  /** First work again on the unpacked tree with the page cache dropped (not in `totalSec`): the all-local pass's baseline. */
  firstWorkColdSec: number;
  /** `find` stating every entry of the unpacked tree, page cache dropped: the metadata-walk pass's baseline. */
  walkSec: number;
  walkEntries: number;
  /** Pull + unpack + first work. */
  totalSec: number;
  /** Registry blob body bytes (config + layers). */
  blobBytes: number;
  blobRequests: number;
}

/** One shoal pass: how the agent runs. */
interface ShoalPass {
  name: string;
  prefetch: "on" | "off";
  /** The agent's supernode, if any. */
  supernode?: string;
  /** After first work, wait until that supernode holds the image's startup trace (the agent sends it when its startup window ends). */
  waitForTrace?: boolean;
  /** Mount (not timed), wait until every chunk is local and inflated, drop the page cache, then time first work, and again warm: the read path's own cost. */
  allLocal?: boolean;
  /** Mount (not timed), drop the page cache, then time `find` stating every entry, against the unpacked tree's. */
  walk?: boolean;
  /** With `allLocal`: unmount once the layers' streams are kept as local files (block mode), mount again, then time: the next container's start. */
  remount?: boolean;
  /** `--layer-mode` of the agent. */
  mode: "block" | "fuse";
}

/** shoal: lazy mount, then first work. */
export interface ShoalFigures {
  pass: string;
  /** `--layer-mode` of the agent, and how many layers it mounted as erofs. */
  mode: "block" | "fuse";
  blockLayers: number | undefined;
  /** FUSE requests the agent answered from the mount until the timed work was done (a walk: during the walk). */
  requests: number | undefined;
  /** A metadata-walk pass: the walk's seconds and the entries it stated. */
  walkSec?: number;
  walkEntries?: number;
  /** `shoal mount` alone (the pull: metadata only). */
  mountSec: number;
  /** The pull as the agent timed it (manifest, indexes, mount ready). */
  pullSec: number | undefined;
  firstWorkSec: number;
  /** Mount + first work. */
  totalSec: number;
  /** Registry blob body bytes from the mount until first work was done. */
  blobBytes: number;
  blobRequests: number;
  /** Chunk bytes the agent fetched (any source) by first work done. */
  agentBytes: number;
  /** `agentBytes` / the original image's compressed layer bytes. */
  shareOfImage: number;
  prefetch: "on" | "off";
  /** Where the prefetch's startup chunks came from, and how many. */
  startup: string | undefined;
  startupChunks: number | undefined;
  /** What `shoal mount` printed (pull time, bytes fetched). */
  mountOutput: string;
  /** Of an all-local pass: first work again, page cache warm. */
  warmFirstWorkSec?: number;
}

/** Result of {@link runFirstWorkBench}. */
export interface FirstWorkBenchResult {
  image: Pick<RealisticImage, "compressedBytes" | "uncompressedBytes" | "manifestDigest" | "cached" | "version">;
  rateMbit: number;
  baseline: BaselineFigures;
  /** Compressed layer bytes of the converted (lazy) image. */
  lazyImageBytes?: number;
  /** Each pass, in the order run; `skipped` when the shoal half did not run. */
  shoal: ShoalFigures[] | { skipped: string };
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
  await dropCaches();
  const cold = await runFirstWork(rootfs);
  await dropCaches();
  const walk = await timedWalk(rootfs);
  await rm(oci, { recursive: true, force: true });
  await rm(bundle, { recursive: true, force: true });
  return { pullSec, unpackSec, firstWorkSec: fw.totalSec, firstWorkColdSec: cold.totalSec, walkSec: walk.sec, walkEntries: walk.entries, totalSec, blobBytes: st.blobBytes, blobRequests: st.blobRequests };
}

/** `find DIR -printf` (an lstat of every entry, as `ls -lR` or a classpath scan does): seconds and entries. */
async function timedWalk(dir: string): Promise<{ sec: number; entries: number }> {
  const t0 = performance.now();
  const out = await run("find", [dir, "-printf", "%m %s %u\\n"]);
  return { sec: sec(t0), entries: out.stdout.split("\n").length - 1 };
}

/** Empty the kernel's page cache (and its dentries and inodes), after writing back what is dirty. */
async function dropCaches(): Promise<void> {
  await run("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
}

/** Wait until the agent at `root` keeps a layer's stream as a local file (block mode, once the image streamed in). */
async function waitForLocalStreams(root: string): Promise<void> {
  const until = performance.now() + 300_000;
  while ((await readdir(join(root, "streams")).catch(() => [] as string[])).filter((n) => !n.includes(".tmp-")).length === 0) {
    if (performance.now() > until) throw new Error(`the agent at ${root} kept no local stream within 5 minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Wait until the agent at `root` holds every chunk of its image, inflated (its prefetch's idle-time pass done). */
async function waitUntilInflated(root: string): Promise<void> {
  const until = performance.now() + 600_000;
  for (;;) {
    const s = JSON.parse(await cliOk(["status", "--root", root, "--json"])) as { images?: Array<{ prefetch?: { inflated?: boolean } }> };
    if (s.images?.[0]?.prefetch?.inflated) return;
    if (performance.now() > until) throw new Error(`the agent at ${root} did not hold its whole image inflated within 10 minutes`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function runShoal(
  reg: NetnsRegistry, lazyRef: string, image: RealisticImage, work: string, log: (s: string) => void, pass: ShoalPass, agentArgs: string[],
): Promise<ShoalFigures> {
  const { prefetch } = pass;
  const root = join(work, `shoal-root-${pass.name}`);
  const mnt = join(work, `shoal-mnt-${pass.name}`);
  await mkdir(root, { recursive: true });
  await mkdir(mnt, { recursive: true });
  liveMountRoots.add(root);
  liveMountRoots.add(mnt);
  const args = ["agent", "--root", root, "--plain-http", "--layer-mode", pass.mode, "--prefetch", prefetch, "--startup-window", "10s", "--log-level", process.env.SHOAL_BENCH_AGENT_LOG_LEVEL ?? "info", ...(pass.supernode ? ["--supernode", pass.supernode] : []), ...agentArgs];
  // SHOAL_BENCH_AGENT_NODE_ARGS: Node flags for the agents (e.g. "--cpu-prof --cpu-prof-dir=DIR")
  const nodeArgs = process.env.SHOAL_BENCH_AGENT_NODE_ARGS?.split(/\s+/).filter(Boolean);
  const agent = await daemon(args, { logFile: join(work, `agent-${pass.name}.log`), ready: { socket: join(root, "agent.sock") }, ...(nodeArgs ? { nodeArgs } : {}) });
  let mounted = false;
  try {
    reg.resetStats();
    log(`shoal ${pass.name} (${pass.mode}): mount + first work (prefetch ${prefetch}${pass.supernode ? `, supernode ${pass.supernode}` : ""})`);
    let t0 = performance.now();
    mounted = true;
    const mountOutput = await cliOk(["mount", "--root", root, lazyRef, mnt]);
    let mountSec = sec(t0);
    let requestsBefore = 0;
    if (pass.allLocal) {
      await waitUntilInflated(root);
      if (pass.remount) {
        if (pass.mode === "block") await waitForLocalStreams(root);
        await cliOk(["umount", "--root", root, mnt]);
        await cliOk(["mount", "--root", root, lazyRef, mnt]);
      }
      await dropCaches();
      requestsBefore = (await agentFetched(cliOk, root)).requests ?? 0;
      t0 = performance.now();
      mountSec = 0;
    }
    if (pass.walk) {
      await dropCaches();
      const before = (await agentFetched(cliOk, root)).requests ?? 0;
      const walk = await timedWalk(mnt);
      const after = await agentFetched(cliOk, root);
      return {
        pass: pass.name, mode: pass.mode, blockLayers: after.blockLayers, requests: (after.requests ?? 0) - before, walkSec: walk.sec, walkEntries: walk.entries,
        mountSec, pullSec: undefined, firstWorkSec: 0, totalSec: 0, blobBytes: 0, blobRequests: 0, agentBytes: after.bytes, shareOfImage: after.bytes / image.compressedBytes, prefetch, startup: undefined, startupChunks: undefined, mountOutput: mountOutput.trim(),
      };
    }
    const fw = await runFirstWork(mnt);
    const totalSec = sec(t0);
    const warm = pass.allLocal ? await runFirstWork(mnt) : undefined;
    const fetched = await agentFetched(cliOk, root);
    await reg.settle();
    const st = reg.stats();
    if (pass.waitForTrace && pass.supernode && fetched.digest) {
      const repo = lazyRef.slice(reg.host.length + 1, lazyRef.lastIndexOf(":"));
      if (!(await waitForTrace(pass.supernode, reg, repo, fetched.digest, 30_000))) throw new Error(`no startup trace of ${repo}@${fetched.digest} at ${pass.supernode} 30 s after first work`);
    }
    const pulled = /pulled in ([0-9.]+) s/.exec(mountOutput);
    return {
      pass: pass.name, mode: pass.mode, blockLayers: fetched.blockLayers, requests: fetched.requests === undefined ? undefined : fetched.requests - requestsBefore, mountSec, pullSec: pulled ? Number(pulled[1]) : undefined, firstWorkSec: fw.totalSec, totalSec, blobBytes: st.blobBytes, blobRequests: st.blobRequests,
      agentBytes: fetched.bytes, shareOfImage: fetched.bytes / image.compressedBytes, prefetch, startup: fetched.startup, startupChunks: fetched.startupChunks, mountOutput: mountOutput.trim(),
      ...(warm ? { warmFirstWorkSec: warm.totalSec } : {}),
    };
  } finally {
    if (mounted) {
      const u = await cli(["umount", "--root", root, mnt]);
      if (u.code !== 0) log(`shoal umount failed (${u.code}): ${u.stderr.trim()}`);
    }
    await stopProcess(agent.child, 15_000);
    // SHOAL_BENCH_LOG_DIR keeps the agent's log of each pass for a closer look
    if (process.env.SHOAL_BENCH_LOG_DIR) await writeFile(join(process.env.SHOAL_BENCH_LOG_DIR, `agent-${pass.name}.log`), agent.logs());
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
    let shoal: ShoalFigures[] | { skipped: string };
    let lazyImageBytes: number | undefined;
    const help = opts.baselineOnly ? undefined : await cli(["agent", "--help"]);
    if (opts.baselineOnly) {
      shoal = { skipped: "baseline only was asked for" };
    } else if (help?.code !== 0) {
      shoal = { skipped: "`shoal agent` does not exist yet (`shoal agent --help` exits non-zero)" };
    } else {
      const supernodes: ShoalDaemon[] = [];
      try {
        log("shoal: converting (setup, not measured)");
        const lazyTag = "v1-shoal";
        const lazyRef = `${reg.host}/${repo}:${lazyTag}`;
        await cliOk(["convert", "--plain-http", "--no-cache", ...(opts.chunkSize ? ["--chunk-size", String(opts.chunkSize)] : []), src, lazyRef]);
        lazyImageBytes = await layerBytes(reg, repo, lazyTag);
        shoal = [];
        // every set of passes with fresh supernodes of its own (their caches and traces start empty)
        for (const mode of opts.layerModes ?? ["block", "fuse"]) {
          const far = await startBenchSupernode(daemon, reg, join(work, `supernode-far-${mode}`), ns);
          supernodes.push(far.daemon);
          const near = await startBenchSupernode(daemon, reg, join(work, `supernode-near-${mode}`));
          supernodes.push(near.daemon);
          const passes: ShoalPass[] = ([
            { name: "metadata-walk", prefetch: "off", walk: true },
            { name: "cold", prefetch },
            { name: "recording", prefetch: "off", supernode: far.url, waitForTrace: true },
            { name: "fleet-trace", prefetch: "on", supernode: far.url },
            { name: "dc-first", prefetch: "on", supernode: near.url, waitForTrace: true },
            { name: "dc-second", prefetch: "on", supernode: near.url },
            { name: "all-local", prefetch: "on", allLocal: true },
            { name: "all-local-next", prefetch: "on", allLocal: true, remount: true },
          ] as Array<Omit<ShoalPass, "mode">>).filter((p) => !opts.passes || opts.passes.includes(p.name) || (p.name === "recording" && opts.passes.includes("fleet-trace"))
            || (p.name === "dc-first" && opts.passes.includes("dc-second"))).map((p) => ({ ...p, mode }));
          for (const pass of passes) shoal.push(await runShoal(reg, lazyRef, image, work, log, { ...pass, name: `${pass.name}-${mode}` }, opts.agentArgs ?? []));
          for (const sn of supernodes.splice(0)) await stopProcess(sn.child, 15_000);
        }
      } finally {
        for (const sn of supernodes) await stopProcess(sn.child, 15_000);
        // SHOAL_BENCH_LOG_DIR keeps the supernodes' logs too (far, then near)
        const logDir = process.env.SHOAL_BENCH_LOG_DIR;
        if (logDir) await Promise.all(supernodes.map((sn, i) => writeFile(join(logDir, `supernode-${i === 0 ? "far" : "near"}.log`), sn.logs())));
        workClean = (await mountsUnder(work)).length === 0;
      }
    }
    return {
      image: { compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes, manifestDigest: image.manifestDigest, cached: image.cached, version: image.version },
      rateMbit,
      baseline,
      ...(lazyImageBytes !== undefined ? { lazyImageBytes } : {}),
      shoal,
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

/** What each pass is, for the report. */
const PASS_TITLES: Record<string, string> = {
  cold: "cold, straight from the registry, no trace",
  recording: "first host through the far supernode (records and sends the trace)",
  "fleet-trace": "later host with the fleet's trace (far supernode, prefetch on)",
  "dc-first": "datacenter: first host, supernode on this side of the link (prefetch on)",
  "dc-second": "datacenter: second fresh host, chunks in the supernode (prefetch on)",
};

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
  if (!Array.isArray(r.shoal)) {
    lines.push(`  shoal: skipped: ${r.shoal.skipped}`);
    return lines;
  }
  for (const s of r.shoal) {
    const req = s.requests === undefined ? "" : `; FUSE requests answered ${s.requests}${s.mode === "block" ? ` (${s.blockLayers ?? 0} layers as erofs)` : ""}`;
    if (s.walkSec !== undefined) {
      lines.push(`  shoal ${s.pass}: find stating ${s.walkEntries} entries, page cache dropped, ${s.walkSec.toFixed(3)} s against ${r.baseline.walkSec.toFixed(3)} s on the unpacked tree (${r.baseline.walkEntries} entries) = ${(s.walkSec / r.baseline.walkSec).toFixed(2)}x${req}`);
      continue;
    }
    if (s.warmFirstWorkSec !== undefined) {
      lines.push(
        `  shoal ${s.pass} (every chunk in the store, inflated; the read path's own cost): first work with the page cache dropped ${s.firstWorkSec.toFixed(2)} s`
          + ` against ${r.baseline.firstWorkColdSec.toFixed(2)} s on the unpacked tree = ${(s.firstWorkSec / r.baseline.firstWorkColdSec).toFixed(2)}x; warm ${s.warmFirstWorkSec.toFixed(2)} s against ${r.baseline.firstWorkSec.toFixed(2)} s${req}`,
      );
      continue;
    }
    lines.push(
      `  shoal ${s.pass} (${PASS_TITLES[s.pass] ?? s.pass}): ${s.totalSec.toFixed(2)} s = ${(r.baseline.totalSec / s.totalSec).toFixed(2)}x faster`
        + `  (mount ${s.mountSec.toFixed(2)} s, agent pull ${s.pullSec?.toFixed(3) ?? "?"} s, first work ${s.firstWorkSec.toFixed(2)} s)`,
      `    fetched by first work: ${mib(s.agentBytes)} = ${(s.shareOfImage * 100).toFixed(1)}% of the image; registry ${mib(s.blobBytes)} in ${s.blobRequests} requests`
        + `${s.startup ? `; startup chunks ${s.startupChunks ?? 0} from ${s.startup}` : ""}${req}`,
    );
  }
  return lines;
}
