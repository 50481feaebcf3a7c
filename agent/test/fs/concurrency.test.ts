import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, textBytes, writeTar, type TarEntry as FixtureEntry } from "@shoal/testkit";
import { LayerFilesystem } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, rawData, tempDir } from "./helpers.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const BIG = 64 * 1024 * 1024;

const run = promisify(execFile);

// Reads go through other processes: a process that serves a FUSE mount and
// also reads it through the libuv thread pool can fill the pool with reads
// whose answers need the pool (as the agent never does).
const PARALLEL_READER = `
const { readFile } = require("node:fs/promises");
const { createHash } = require("node:crypto");
const paths = JSON.parse(process.argv[1]);
Promise.all(paths.map((p) => readFile(p))).then((bufs) => {
  process.stdout.write(JSON.stringify(bufs.map((b) => createHash("sha256").update(b).digest("hex"))));
});`;

async function streamSha(path: string): Promise<{ sha: string; bytes: number; ms: number }> {
  const start = performance.now();
  const { stdout } = await run("sh", ["-c", 'wc -c < "$1"; sha256sum "$1"', "sh", path], { maxBuffer: 1 << 20 });
  const [bytes, line] = stdout.trim().split("\n");
  return { sha: line!.split(" ")[0]!, bytes: Number(bytes), ms: performance.now() - start };
}

describe("concurrent and bulk reads", () => {
  const cleanup = new Cleanup();
  let fs: LayerFilesystem;
  const files: FixtureEntry[] = [];
  let big: Uint8Array;

  beforeAll(async () => {
    const work = cleanup.dir(await tempDir("conc"));
    for (let i = 0; i < 400; i++) {
      const size = (i * 7919) % 70_000;
      files.push({ path: `d${i % 10}/f${i}`, type: "file", data: i % 2 ? randomBytes(100 + i, size) : textBytes(100 + i, size) });
    }
    const small = await memoryLayer("small", writeTar(files).tar, 16384);
    big = randomBytes(99, BIG);
    const bigTar = writeTar([{ path: "big.bin", type: "file", data: big }]).tar;
    const lazy = await memoryLayer("big-lazy", bigTar, 1 << 20);
    fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    fs.addLayer(small);
    fs.addLayer(lazy);
    fs.addLayer({ id: "big-raw", index: lazy.index, data: rawData(bigTar) });
    await fs.mount();
  }, 120_000);

  afterAll(async () => {
    await cleanup.run();
  });

  it("serves 200 parallel readFile calls (and 200 more, overlapping) with the right bytes", async () => {
    const dir = fs.layerPath("small");
    const before = fs.counters.errors.read ?? 0;
    const paths = files.map((f) => join(dir, f.path));
    const [a, b] = await Promise.all([0, 1].map(async () => {
      const { stdout } = await run(process.execPath, ["-e", PARALLEL_READER, JSON.stringify(paths)], { maxBuffer: 1 << 24, timeout: 60_000 });
      return JSON.parse(stdout) as string[];
    }));
    for (const [i, f] of files.entries()) {
      expect(a![i], f.path).toBe(sha(f.data!));
      expect(b![i], f.path).toBe(sha(f.data!));
    }
    expect(fs.counters.errors.read ?? 0).toBe(before);
  });

  it("reads a 64 MiB file through FUSE (throughput printed)", async () => {
    const want = sha(big);
    for (const id of ["big-raw", "big-lazy"]) {
      const r = await streamSha(join(fs.layerPath(id), "big.bin"));
      expect(r.bytes).toBe(BIG);
      expect(r.sha).toBe(want);
      console.log(`${id}: 64 MiB in ${r.ms.toFixed(0)} ms = ${(BIG / 1e6 / (r.ms / 1000)).toFixed(0)} MB/s`);
    }
    const cached = await streamSha(join(fs.layerPath("big-raw"), "big.bin"));
    console.log(`big-raw again (page cache): ${(BIG / 1e6 / (cached.ms / 1000)).toFixed(0)} MB/s`);
    console.log("fuse ops:", JSON.stringify(fs.counters.ops));
  });
});
