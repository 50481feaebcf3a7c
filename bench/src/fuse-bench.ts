// FUSE reads of cached data and a full-tree stat walk, shoal mount against
// the same tree unpacked on local disk by umoci, in one run. Page caches are
// dropped before each pass so both sides read from their own storage.
// Goals (issue 3): reads at least 0.5x local disk; stat walk at most 3x slower.
import { execFileSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentClient } from "@shoal/agent/client";
import { realisticImage } from "./setup.ts";
import { pushLayout, runShoalOk, startAgent, startRegistry, umociUnpack, unmountAllUnder, type RunningAgent } from "@shoal/testkit";


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

export interface FuseBenchResult {
  bytes: number;
  files: number;
  localReadSec: number;
  fuseReadSec: number;
  readRatio: number;
  entries: number;
  localStatSec: number;
  fuseStatSec: number;
  statRatio: number;
}

export async function runFuseBench(log: (s: string) => void = (s) => console.error(s)): Promise<FuseBenchResult> {
  const image = await realisticImage(log);
  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "shoal-bench-fuse-"));
  let agent: RunningAgent | undefined;
  try {
    await pushLayout(image.layoutDir, image.tag, `${registry.host}/bench/realistic:v1`);
    await runShoalOk(["convert", "--plain-http", `${registry.host}/bench/realistic:v1`, `${registry.host}/bench/realistic:lazy`]);
    const local = (await umociUnpack(image.layoutDir, image.tag, join(work, "bundle"))).rootfs;
    agent = await startAgent(join(work, "root"), ["--plain-http", "--prefetch", "on", "--prefetch-rate", "1G", "--log-level", "warn"]);
    const mnt = join(work, "mnt");
    await mkdir(mnt);
    const client = new AgentClient({ root: agent.root });
    await client.mount(`${registry.host}/bench/realistic:lazy`, mnt);
    log("waiting for prefetch to complete (all chunks local, and stored inflated)");
    for (;;) {
      const s = await client.status();
      if (s.images[0]?.prefetch?.finished && s.images[0].prefetch.inflated) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const localFiles = await files(local);
    const fuseFiles = localFiles.map((f) => join(mnt, f.slice(local.length)));
    dropCaches();
    const l = await readAll(localFiles);
    dropCaches();
    const f = await readAll(fuseFiles);
    if (l.bytes !== f.bytes) throw new Error(`byte counts differ: local ${l.bytes}, fuse ${f.bytes}`);
    dropCaches();
    const ls = await statWalk(local);
    dropCaches();
    const fs = await statWalk(mnt);
    return {
      bytes: l.bytes, files: localFiles.length, localReadSec: l.sec, fuseReadSec: f.sec, readRatio: l.sec / f.sec,
      entries: ls.entries, localStatSec: ls.sec, fuseStatSec: fs.sec, statRatio: fs.sec / ls.sec,
    };
  } finally {
    await agent?.stop();
    await unmountAllUnder(work);
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }
}
