import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, textBytes, writeTar, type TarSpec as FixtureEntry } from "@shoal/testkit";
import { LayerFilesystem } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, rawData, readInChild, tempDir } from "./helpers.ts";

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const BIG = 64 * 1024 * 1024;

async function streamSha(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(piece as Buffer);
  return h.digest("hex");
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

  it("serves 200 parallel readFile calls from another process with the right bytes", async () => {
    const dir = fs.layerPath("small");
    const readsBefore = fs.counters.ops.read ?? 0;
    const first = files.slice(0, 200);
    const got = await readInChild(first.map((f) => join(dir, f.path)));
    expect(got).toEqual(first.map((f) => sha(f.data!)));
    expect(fs.counters.ops.read! - readsBefore).toBeGreaterThanOrEqual(first.filter((f) => f.data!.length > 0).length);
    expect(fs.counters.errors).toEqual({});
  });

  it("keeps a file's pages across opens: reading it again from another process asks FUSE for nothing", async () => {
    const path = join(fs.layerPath("small"), files[301]!.path);
    const ops = () => ({ ...fs.counters.ops });
    expect(await readInChild([path])).toEqual([sha(files[301]!.data!)]);
    const before = ops();
    expect(await readInChild([path])).toEqual([sha(files[301]!.data!)]);
    const after = ops();
    expect({ read: (after.read ?? 0) - (before.read ?? 0), open: (after.open ?? 0) - (before.open ?? 0) }).toEqual({ read: 0, open: 0 });
  });

  it("serves parallel readers in this process too, while fewer than the libuv threads block", async () => {
    const dir = fs.layerPath("small");
    const rest = files.slice(200, 203);
    const got = await Promise.all(rest.map((f) => readFile(join(dir, f.path))));
    expect(got.map(sha)).toEqual(rest.map((f) => sha(f.data!)));
  });

  it("reads a 64 MiB file through FUSE (throughput printed, not asserted)", async () => {
    const want = sha(big);
    for (const id of ["big-raw", "big-lazy"]) {
      const path = join(fs.layerPath(id), "big.bin");
      const start = performance.now();
      await promisify(execFile)("dd", [`if=${path}`, "of=/dev/null", "bs=1M"]);
      const ms = performance.now() - start;
      console.log(`${id}: 64 MiB through FUSE in ${ms.toFixed(0)} ms = ${(BIG / 1e6 / (ms / 1000)).toFixed(0)} MB/s (dd bs=1M, another process)`);
      expect(await streamSha(path)).toBe(want);
    }
    expect(fs.counters.bytesRead).toBeGreaterThanOrEqual(2 * BIG);
    console.log("fuse ops:", JSON.stringify(fs.counters.ops));
  });
});
