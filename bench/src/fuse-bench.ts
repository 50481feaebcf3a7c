// FUSE reads of cached data and a full-tree stat walk, shoal mount against
// the same tree unpacked on local disk by umoci, in one run. Page caches are
// dropped before each pass so both sides read from their own storage.
// Goals (issue 3): reads at least 0.5x local disk; stat walk at most 3x slower.
// The shoal side runs twice, with the FUSE keeper (the default) and without
// (--fuse-keeper off), to show what relaying each request costs (issue 9).
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "@shoal/agent/client";
import { realisticImage } from "./setup.ts";
import { freePort, pushLayout, runShoalOk, startAgent, startRegistry, umociUnpack, unmountAllUnder, type RunningAgent } from "@shoal/testkit";


function dropCaches(): void {
  execFileSync("sync");
  execFileSync("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"]);
}

async function files(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      if (d.isDirectory()) await walk(p);
      else if (d.isFile()) out.push(p);
    }
  };
  await walk(root);
  return out.sort();
}

/** Read every file (4 at a time); returns bytes and seconds. */
async function readAll(list: string[]): Promise<{ bytes: number; sec: number }> {
  const t0 = performance.now();
  let bytes = 0;
  let next = 0;
  const worker = async () => {
    while (next < list.length) {
      const f = list[next++]!;
      for await (const piece of createReadStream(f, { highWaterMark: 1 << 20 })) bytes += (piece as Buffer).length;
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return { bytes, sec: (performance.now() - t0) / 1000 };
}

/** lstat every entry of the tree; returns entries and seconds. */
async function statWalk(root: string): Promise<{ entries: number; sec: number }> {
  const t0 = performance.now();
  let entries = 0;
  const walk = async (dir: string) => {
    for (const d of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, d.name);
      await lstat(p);
      entries++;
      if (d.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return { entries, sec: (performance.now() - t0) / 1000 };
}

/** One FUSE pass pair (read all, stat walk) on one agent's mount, with the FUSE requests each took. */
export interface FusePass {
  readSec: number;
  statSec: number;
  readOps: number;
  statOps: number;
}

export interface FuseBenchResult {
  bytes: number;
  files: number;
  entries: number;
  localReadSec: number;
  localStatSec: number;
  /** The default: FUSE connections held by the keeper, requests relayed to the agent. */
  keeper: FusePass;
  /** `--fuse-keeper off`: the agent answers /dev/fuse itself. */
  direct: FusePass;
  readRatio: number;
  statRatio: number;
  /** What relaying through the keeper adds per FUSE request of the stat walk, microseconds. */
  keeperUsPerRequest: number;
}

/** Sum of shoal_fuse_operations_total at the agent's metrics endpoint. */
async function fuseOps(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  let n = 0;
  for (const m of text.matchAll(/^shoal_fuse_operations_total\{[^}]*\} ([0-9.e+]+)$/gm)) n += Number(m[1]);
  return n;
}

/** An agent (keeper on or off) with the image mounted at WORK/NAME-mnt, prefetched whole and inflated. */
async function mountedAgent(work: string, name: string, image: string, keeper: boolean, log: (s: string) => void): Promise<{ agent: RunningAgent; mnt: string; metricsPort: number }> {
  const metricsPort = await freePort();
  const agent = await startAgent(join(work, `${name}-root`), [
    "--plain-http", "--prefetch", "on", "--prefetch-rate", "1G", "--log-level", "warn", "--fuse-keeper", keeper ? "on" : "off", "--metrics-listen", `127.0.0.1:${metricsPort}`,
  ]);
  const mnt = join(work, `${name}-mnt`);
  await mkdir(mnt);
  const client = new AgentClient({ root: agent.root });
  await client.mount(image, mnt);
  log(`${name}: waiting for prefetch to complete (all chunks local, and stored inflated)`);
  for (;;) {
    const s = await client.status();
    if (s.images[0]?.prefetch?.finished && s.images[0].prefetch.inflated) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return { agent, mnt, metricsPort };
}

async function fusePass(a: { mnt: string; metricsPort: number }, list: string[], bytes: number): Promise<FusePass> {
  dropCaches();
  const ops0 = await fuseOps(a.metricsPort);
  const r = await readAll(list);
  if (r.bytes !== bytes) throw new Error(`byte counts differ: local ${bytes}, ${a.mnt} ${r.bytes}`);
  const ops1 = await fuseOps(a.metricsPort);
  dropCaches();
  const st = await statWalk(a.mnt);
  const ops2 = await fuseOps(a.metricsPort);
  return { readSec: r.sec, statSec: st.sec, readOps: ops1 - ops0, statOps: ops2 - ops1 };
}

export async function runFuseBench(log: (s: string) => void = (s) => console.error(s)): Promise<FuseBenchResult> {
  const image = await realisticImage(log);
  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "shoal-bench-fuse-"));
  const agents: RunningAgent[] = [];
  try {
    await pushLayout(image.layoutDir, image.tag, `${registry.host}/bench/realistic:v1`);
    await runShoalOk(["convert", "--plain-http", `${registry.host}/bench/realistic:v1`, `${registry.host}/bench/realistic:lazy`]);
    const local = (await umociUnpack(image.layoutDir, image.tag, join(work, "bundle"))).rootfs;
    const ref = `${registry.host}/bench/realistic:lazy`;
    const kept = await mountedAgent(work, "keeper", ref, true, log);
    agents.push(kept.agent);
    const direct = await mountedAgent(work, "direct", ref, false, log);
    agents.push(direct.agent);
    const localFiles = await files(local);
    const under = (mnt: string) => localFiles.map((f) => join(mnt, f.slice(local.length)));
    dropCaches();
    const l = await readAll(localFiles);
    dropCaches();
    const ls = await statWalk(local);
    const k = await fusePass(kept, under(kept.mnt), l.bytes);
    const d = await fusePass(direct, under(direct.mnt), l.bytes);
    return {
      bytes: l.bytes, files: localFiles.length, entries: ls.entries, localReadSec: l.sec, localStatSec: ls.sec, keeper: k, direct: d,
      readRatio: l.sec / k.readSec, statRatio: k.statSec / ls.sec,
      keeperUsPerRequest: ((k.statSec - d.statSec) * 1e6) / Math.max(1, k.statOps),
    };
  } finally {
    for (const a of agents) await a.stop();
    await unmountAllUnder(work);
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}
