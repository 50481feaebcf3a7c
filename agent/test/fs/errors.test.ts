import { spawn } from "node:child_process";
import { chmod, mkdir, open, readFile, rename, stat, symlink, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError } from "@shoal/blockindex";
import { run, writeTar } from "@shoal/testkit";
import { findMount, LayerFilesystem, type LayerData } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, tempDir } from "./helpers.ts";

const t = (s: string) => new TextEncoder().encode(s);

describe("errors at the FUSE edge", () => {
  const cleanup = new Cleanup();
  let fs: LayerFilesystem;
  let dir: string;
  const aborted: string[] = [];
  let hangStarted: () => void = () => {};

  beforeAll(async () => {
    const work = cleanup.dir(await tempDir("errors"));
    const layer = await memoryLayer("l", writeTar([
      { path: "good", type: "file", data: t("good bytes\n") },
      { path: "broken", type: "file", data: t("never readable\n") },
      { path: "gone", type: "file", data: t("evicted\n") },
      { path: "sync-throw", type: "file", data: t("throws synchronously\n") },
      { path: "short", type: "file", data: t("short answer\n") },
      { path: "hang", type: "file", data: new Uint8Array(8192).fill(7) },
      { path: "sub", type: "dir" },
    ]).tar);
    const at = (p: string) => layer.index.find(p)!.dataOffset;
    const data: LayerData = {
      read(offset, length, opts) {
        if (offset === at("broken")) return Promise.reject(new Error("peer hung up"));
        if (offset === at("gone")) return Promise.reject(new NotFoundError("gone", "chunk evicted"));
        if (offset === at("sync-throw")) throw new TypeError("bug in a provider");
        if (offset === at("short")) return layer.data.read(offset, length - 1);
        if (offset === at("hang")) {
          hangStarted();
          return new Promise((_, reject) => opts?.signal?.addEventListener("abort", () => {
            aborted.push("hang");
            reject(opts.signal!.reason as Error);
          }));
        }
        return layer.data.read(offset, length, opts);
      },
    };
    fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    fs.addLayer({ id: "l", index: layer.index, data });
    await fs.mount();
    dir = fs.layerPath("l");
  }, 60_000);

  afterAll(async () => {
    await cleanup.run();
  });

  it("turns a failing data provider into EIO and keeps serving other files", async () => {
    await expect(readFile(join(dir, "broken"))).rejects.toMatchObject({ code: "EIO" });
    await expect(readFile(join(dir, "sync-throw"))).rejects.toMatchObject({ code: "EIO" });
    await expect(readFile(join(dir, "short"))).rejects.toMatchObject({ code: "EIO" });
    expect(await readFile(join(dir, "good"), "utf8")).toBe("good bytes\n");
    expect(fs.counters.errors.read).toBeGreaterThanOrEqual(3);
    expect(fs.mounted).toBe(true);
  });

  it("turns SHOAL_ERR_NOT_FOUND from the provider into ENOENT", async () => {
    await expect(readFile(join(dir, "gone"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("answers ENOENT for missing paths and layers", async () => {
    await expect(stat(join(dir, "missing"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(join(dir, "sub/missing"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(join(fs.mountpoint, "no-such-layer"))).rejects.toMatchObject({ code: "ENOENT" });
    await expect(stat(join(dir, "good/below-a-file"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("refuses every write with EROFS", async () => {
    const erofs = { code: "EROFS" };
    await expect(writeFile(join(dir, "new"), "x")).rejects.toMatchObject(erofs);
    await expect(open(join(dir, "good"), "r+")).rejects.toMatchObject(erofs);
    await expect(open(join(dir, "good"), "w")).rejects.toMatchObject(erofs);
    await expect(mkdir(join(dir, "newdir"))).rejects.toMatchObject(erofs);
    await expect(mkdir(join(fs.mountpoint, "newlayer"))).rejects.toMatchObject(erofs);
    await expect(unlink(join(dir, "good"))).rejects.toMatchObject(erofs);
    await expect(rename(join(dir, "good"), join(dir, "good2"))).rejects.toMatchObject(erofs);
    await expect(symlink("good", join(dir, "link"))).rejects.toMatchObject(erofs);
    await expect(chmod(join(dir, "good"), 0o777)).rejects.toMatchObject(erofs);
    await expect(run("setfattr", ["-n", "user.x", "-v", "1", join(dir, "good")])).rejects.toThrow(/Read-only file system/);
    expect(await readFile(join(dir, "good"), "utf8")).toBe("good bytes\n");
  });

  it("aborts the provider's read when the reading process is interrupted", async () => {
    const started = new Promise<void>((res) => (hangStarted = res));
    // O_DIRECT reads are synchronous FUSE requests, which signals interrupt.
    const dd = spawn("dd", [`if=${join(dir, "hang")}`, "of=/dev/null", "bs=4096", "count=1", "iflag=direct"], { stdio: "ignore" });
    const exited = new Promise<number | null>((res) => dd.on("exit", (code) => res(code)));
    await started;
    dd.kill("SIGINT");
    expect(await exited).not.toBe(0);
    expect(aborted).toEqual(["hang"]);
    expect(await readFile(join(dir, "good"), "utf8")).toBe("good bytes\n");
  });

  it("counts operations per opcode", () => {
    expect(fs.counters.ops.lookup).toBeGreaterThan(0);
    expect(fs.counters.ops.read).toBeGreaterThan(0);
    expect(fs.counters.ops.open).toBeGreaterThan(0);
    expect(fs.counters.bytesRead).toBeGreaterThan(0);
  });
});

describe("mount lifecycle", () => {
  const cleanup = new Cleanup();
  let work: string;
  let layer: Awaited<ReturnType<typeof memoryLayer>>;

  beforeAll(async () => {
    work = cleanup.dir(await tempDir("life"));
    layer = await memoryLayer("l", writeTar([{ path: "f", type: "file", data: t("data\n") }]).tar);
  });

  afterAll(async () => {
    await cleanup.run();
  });

  const newFs = (name: string) => {
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, name) }));
    fs.addLayer({ id: "l", index: layer.index, data: layer.data });
    return fs;
  };

  it("unmounts a busy mount by detaching it and aborting the connection", async () => {
    const fs = newFs("busy");
    await fs.mount();
    const holder = spawn("sh", ["-c", `exec 3< "$1"; exec sleep 60`, "sh", join(fs.layerPath("l"), "f")], { stdio: "ignore" });
    const gone = new Promise((res) => holder.on("exit", res));
    try {
      await new Promise((res) => setTimeout(res, 200));
      await fs.unmount();
      expect(fs.mounted).toBe(false);
      expect(await findMount(fs.mountpoint)).toBeUndefined();
    } finally {
      holder.kill("SIGKILL");
      await gone;
    }
  });

  it("replaces a dead mount left by a crashed server, refuses a live one, and never unmounts another session's mount", async () => {
    const crashed = newFs("stale");
    await crashed.mount();
    const device = (await findMount(crashed.mountpoint))!.device;
    await abortConnection(device);
    await expect(stat(crashed.mountpoint)).rejects.toMatchObject({ code: "ENOTCONN" });
    const next = newFs("stale");
    await next.mount();
    expect(await readFile(join(next.layerPath("l"), "f"), "utf8")).toBe("data\n");
    await expect(newFs("stale").mount()).rejects.toThrow(/already served by another process/);
    await crashed.unmount();
    expect(await readFile(join(next.layerPath("l"), "f"), "utf8")).toBe("data\n");
    await next.unmount();
    expect(await findMount(next.mountpoint)).toBeUndefined();
  });
});

/** Simulate a crashed server: abort FUSE connection `device` through fusectl (mounted for the moment if needed). */
async function abortConnection(device: string): Promise<void> {
  const ctl = "/sys/fs/fuse/connections";
  const mounted = !(await findMount(ctl));
  if (mounted) await run("mount", ["-t", "fusectl", "fusectl", ctl]);
  try {
    await writeFile(`${ctl}/${device.split(":")[1]}/abort`, "1");
  } finally {
    if (mounted) await run("umount", [ctl]);
  }
}
