import { execFile, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  busyboxImage, diffTrees, edgeCaseImage, largeImage, pushLayout, snapshotTree, startRegistry, umociUnpack, writeImageLayout, unmountAllUnder, type LayerSpec, type RunningRegistry, type TreeSnapshot, runShoal, startAgent, type RunningAgent, waitFor, freePort, startDelayProxy,
} from "@shoal/testkit";
import { callAgent } from "@shoal/agent/client";
import type { AgentStatus } from "../src/index.ts";
import type { MountResult } from "../src/index.ts";
import { BACKGROUND_RUN_BYTES, FAILURE_MEMORY_MS, PREFETCH_CONCURRENCY } from "@shoal/fetch";


const run = promisify(execFile);
const CHUNK = 64 * 1024;
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

let registry: RunningRegistry;
let work: string;

/** Build, push and convert `layers` as `name`; returns the lazy reference and the umoci snapshot of the original. */
async function prepare(name: string, layers: LayerSpec[], chunkSize = CHUNK): Promise<{ lazy: string; original: TreeSnapshot }> {
  const layout = await writeImageLayout(join(work, `${name}-src`), layers, { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/${name}:v1`);
  const conv = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", String(chunkSize), `${registry.host}/${name}:v1`, `${registry.host}/${name}:lazy`]);
  expect(conv.code, conv.stderr).toBe(0);
  const original = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, `${name}-unpack`))).rootfs);
  return { lazy: `${registry.host}/${name}:lazy`, original };
}

async function mount(agent: RunningAgent, image: string, dir: string): Promise<MountResult> {
  await mkdir(dir, { recursive: true });
  return callAgent<MountResult>(agent.root, "POST", "/v1/mounts", { image, mountpoint: dir });
}

async function prefetchFinished(agent: RunningAgent): Promise<AgentStatus | undefined> {
  const s = await callAgent<AgentStatus>(agent.root, "GET", "/v1/status");
  return s.images.length > 0 && s.images.every((i) => i.prefetch?.finished) ? s : undefined;
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-agent-e2e-"));
}, 60_000);

afterAll(async () => {
  if (work) await unmountAllUnder(work);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("shoal agent: lazy mounts", () => {
  let edge: Awaited<ReturnType<typeof prepare>>;
  let busybox: Awaited<ReturnType<typeof prepare>>;
  let agent: RunningAgent;

  beforeAll(async () => {
    edge = await prepare("edge", edgeCaseImage({ chunkSize: CHUNK, smallFileCount: 1000 }).layers);
    busybox = await prepare("busybox", busyboxImage());
    agent = await startAgent(join(work, "root-a"), ["--plain-http", "--prefetch", "off"]);
  }, 600_000);

  afterAll(async () => {
    await agent?.stop();
  });

  it("mounts a tree equal to umoci unpack of the original image", async () => {
    const dir = join(work, "mnt-edge");
    const r = await mount(agent, edge.lazy, dir);
    expect(r.layers).toBe(5);
    const mounted = await snapshotTree(dir);
    expect(diffTrees(edge.original, mounted, { layeredHardlinks: true })).toEqual([]);
  });

  it("runs a program from a lazily mounted image with chroot", async () => {
    const dir = join(work, "mnt-busybox");
    await mkdir(dir);
    const res = await runShoal(["mount", "--root", agent.root, busybox.lazy, dir]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.toString()).toMatch(/pulled in [0-9.]+ s/);
    const { stdout } = await run("chroot", [dir, "/bin/sh", "-c", "/app/run.sh && echo $((6 * 7))"]);
    expect(stdout).toBe("hello from a lazy image\n42\n");
  });

  it("shoal status reports images, mounts and bytes per source", async () => {
    const res = await runShoal(["status", "--root", agent.root, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const s = JSON.parse(res.stdout.toString()) as AgentStatus;
    expect(s.mounts.map((m) => m.mountpoint)).toEqual(expect.arrayContaining([join(work, "mnt-edge"), join(work, "mnt-busybox")]));
    expect(s.sources.origin?.bytes).toBeGreaterThan(0);
    const text = await runShoal(["status", "--root", agent.root]);
    expect(text.stdout.toString()).toMatch(/source origin: \d+ chunks/);
  });

  it("refuses bad requests with clear errors", async () => {
    const missing = await runShoal(["mount", "--root", agent.root, busybox.lazy, join(work, "does-not-exist")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/does not exist/);
    const noAgent = await runShoal(["status", "--root", join(work, "no-agent-here")]);
    expect(noAgent.code).toBe(1);
    expect(noAgent.stderr).toMatch(/SHOAL_ERR_AGENT_NOT_RUNNING/);
  });

  it("mounts an image nobody converted by indexing it here, and says the pull was not lazy", async () => {
    const dir = join(work, "mnt-unconverted");
    await mkdir(dir);
    const res = await runShoal(["mount", "--root", agent.root, `${registry.host}/busybox:v1`, dir]);
    expect(res.code, res.stderr).toBe(0);
    const { stdout } = await run("chroot", [dir, "/bin/sh", "-c", "/app/run.sh"]);
    expect(stdout).toBe("hello from a lazy image\n");
    const s = await callAgent<AgentStatus>(agent.root, "GET", "/v1/status");
    const img = s.images.find((i) => i.image === `${registry.host}/busybox:v1`)!;
    expect(img.seekable?.length).toBeGreaterThan(0);
    expect(img.seekable!.every((l) => l.index === "local")).toBe(true);
    const text = await runShoal(["status", "--root", agent.root]);
    expect(text.stdout.toString()).toMatch(/index built here from a full read: not lazy/);
    await callAgent(agent.root, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(dir)}`);
  });

  it("refuses mountpoints that would cover the host, the agent or a shoal mount, and paths that are not absolute and clean", async () => {
    // an agent that mounts where it should not is undone at once, so that a failing run leaves the host whole
    const attempt = (dir: string) => callAgent<MountResult>(agent.root, "POST", "/v1/mounts", { image: busybox.lazy, mountpoint: dir }).then(
      async (r) => {
        await callAgent(agent.root, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(r.mountpoint)}`).catch(() => execFileSync("umount", ["-l", r.mountpoint]));
        return "mounted";
      },
      (e: { code?: string }) => e.code,
    );
    const passwd = await readFile("/etc/passwd", "utf8");
    for (const dir of ["/etc", "/", "/usr/lib", agent.root, join(agent.root, "layers"), work, join(work, "mnt-busybox", "bin")]) {
      expect([dir, await attempt(dir)]).toEqual([dir, "SHOAL_ERR_MOUNTPOINT_REFUSED"]);
    }
    expect(await readFile("/etc/passwd", "utf8")).toBe(passwd);
    expect((await callAgent<AgentStatus>(agent.root, "GET", "/v1/status")).root).toBe(agent.root);
    await mkdir(join(work, "mnt-clean"));
    for (const dir of ["mnt-clean", `${work}/x/../mnt-clean`, `${work}//mnt-clean`]) {
      expect([dir, await attempt(dir)]).toEqual([dir, "SHOAL_ERR_INVALID_ARGUMENT"]);
    }
    // the CLI resolves a relative path itself
    const rel = await runShoal(["mount", "--root", agent.root, busybox.lazy, "mnt-clean"], { cwd: work });
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.stdout.toString()).toContain(`at ${join(work, "mnt-clean")}:`);
    expect((await runShoal(["umount", "--root", agent.root, "mnt-clean"], { cwd: work })).code).toBe(0);
  });

  it("covers a non-empty directory only when asked to (--force), and shows it again when unmounted", async () => {
    const dir = join(work, "mnt-full");
    await mkdir(dir);
    await writeFile(join(dir, "mine.txt"), "mine");
    const refused = await runShoal(["mount", "--root", agent.root, busybox.lazy, dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^shoal: .*is not empty \(1 entries\).*--force.* \[SHOAL_ERR_MOUNTPOINT_NOT_EMPTY\]\n$/);
    const forced = await runShoal(["mount", "--root", agent.root, "--force", busybox.lazy, dir]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(dir, "app/run.sh"), "utf8")).toContain("hello from a lazy image");
    expect((await runShoal(["umount", "--root", agent.root, dir])).code).toBe(0);
    expect(await readFile(join(dir, "mine.txt"), "utf8")).toBe("mine");
  });

  it("removes the record of a mount unmounted from outside; a restart does not cover a directory that changed", async () => {
    const gone = join(work, "mnt-gone");
    const changed = join(work, "mnt-changed");
    await mount(agent, busybox.lazy, gone);
    await mount(agent, busybox.lazy, changed);
    execFileSync("umount", ["-l", gone]);
    const u = await runShoal(["umount", "--root", agent.root, gone]);
    expect(u.code, u.stderr).toBe(0);
    const mountpoints = async () => (await callAgent<AgentStatus>(agent.root, "GET", "/v1/status")).mounts.map((m) => m.mountpoint);
    expect(await mountpoints()).not.toContain(gone);
    // while the agent is down, the mount goes and the directory fills: the next agent leaves it alone
    await agent.stop();
    execFileSync("umount", ["-l", changed]);
    await writeFile(join(changed, "new.txt"), "new");
    agent = await startAgent(agent.root, ["--plain-http", "--prefetch", "off"]);
    expect(await mountpoints()).not.toContain(changed);
    expect(await mountpoints()).toContain(join(work, "mnt-edge"));
    expect(await readFile(join(changed, "new.txt"), "utf8")).toBe("new");
    expect((await readFile("/proc/self/mounts", "utf8")).includes(` ${changed} `)).toBe(false);
  });

  it("will not unmount a busy mount, then unmounts it", async () => {
    const dir = join(work, "mnt-busybox");
    const holder = spawn("sleep", ["30"], { cwd: dir, stdio: "ignore" });
    const exited = new Promise((r) => holder.once("exit", r).once("error", r));
    try {
      await new Promise((r) => setTimeout(r, 200));
      const busy = await runShoal(["umount", "--root", agent.root, dir]);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/SHOAL_ERR_BUSY/);
      const { stdout } = await run("chroot", [dir, "/bin/echo", "still mounted"]);
      expect(stdout).toBe("still mounted\n");
    } finally {
      holder.kill("SIGKILL");
      await exited;
    }
    const ok = await runShoal(["umount", "--root", agent.root, dir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await readFile("/proc/self/mounts", "utf8")).includes(` ${dir} `)).toBe(false);
  });

  it("runs a container with containerd and runc over a writable overlay on the lazy mount", async () => {
    const lower = join(work, "mnt-ctr");
    await mount(agent, busybox.lazy, lower);
    const ctr = await startContainerd(join(work, "containerd"));
    const rootfs = join(work, "ctr-rootfs");
    const upper = join(work, "ctr-upper");
    const wk = join(work, "ctr-work");
    for (const d of [rootfs, upper, wk]) await mkdir(d, { recursive: true });
    execFileSync("mount", ["-t", "overlay", "overlay", "-o", `lowerdir=${lower},upperdir=${upper},workdir=${wk}`, rootfs]);
    try {
      const { stdout } = await run("ctr", ["--address", ctr.address, "run", "--rm", "--rootfs", rootfs, "shoal-test-1", "/bin/sh", "-c", "echo written > /tmp/x && cat /tmp/x && /app/run.sh"], { timeout: 60_000 });
      expect(stdout).toBe("written\nhello from a lazy image\n");
      expect(await readFile(join(upper, "tmp/x"), "utf8")).toBe("written\n");
    } finally {
      execFileSync("umount", [rootfs]);
      await ctr.stop();
    }
  });

  it("serves Prometheus metrics", async () => {
    const port = await freePort();
    const m = await startAgent(join(work, "root-metrics"), ["--plain-http", "--metrics-listen", `127.0.0.1:${port}`]);
    try {
      // the listener may bind just after the control socket the start waits for
      const text = await waitFor("the metrics listener", () => fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => undefined), 30_000);
      expect(text).toMatch(/shoal_fetch_bytes_total/);
      expect(text).toMatch(/shoal_fuse_operations_total/);
    } finally {
      await m.stop();
    }
  });
});

describe("shoal agent: laziness, prefetch, restarts, faults", () => {
  it("fetches under 5% of the image for a mount and one small read", async () => {
    const img = largeImage({ totalBytes: 48 << 20 });
    const big = await prepare("big", img.layers, 1 << 20);
    const agent = await startAgent(join(work, "root-lazy"), ["--plain-http", "--prefetch", "off"]);
    try {
      const manifestBytes = await imageCompressedBytes(big.lazy);
      await registry.settle();
      await registry.resetStats();
      const dir = join(work, "mnt-big");
      await mount(agent, big.lazy, dir);
      expect(sha(await readFile(join(dir, img.smallFile.path)))).toBe(img.smallFile.sha256.replace("sha256:", ""));
      await registry.settle();
      expect(registry.stats().blobBytes / manifestBytes).toBeLessThan(0.05);
    } finally {
      await agent.stop();
    }
  });

  it("fetches a file whole at its first read, in one request that the read joins", async () => {
    const whole = await prepare("whole", busyboxImage({ dataBytes: 2 << 20, marker: "whole" }));
    // per file: in block mode a read of the stream cannot tell data.bin from run.sh, whose data starts in the same
    // page, and starts the first (see "Block reads know their file" in docs/architecture.md)
    const agent = await startAgent(join(work, "root-whole"), ["--plain-http", "--prefetch", "off", "--layer-mode", "fuse"]);
    try {
      const dir = join(work, "mnt-whole");
      await mount(agent, whole.lazy, dir);
      await registry.settle();
      await registry.resetStats();
      const h = await open(join(dir, "app/data.bin"));
      try {
        const { bytesRead } = await h.read(Buffer.alloc(100), 0, 100, 0);
        expect(bytesRead).toBe(100);
      } finally {
        await h.close();
      }
      // 2 MiB in 64 KiB chunks: 32 chunks, all from the one request the first read started
      const chunks = async () => (await callAgent<AgentStatus>(agent.root, "GET", "/v1/status")).sources.origin?.chunks ?? 0;
      await waitFor("the whole file local", async () => ((await chunks()) >= 32 ? true : undefined), 30_000);
      await registry.settle();
      expect(registry.stats().blobRequests).toBe(1);
    } finally {
      await agent.stop();
    }
  });

  it("has the misses of two readers of different files in flight at once", async () => {
    const two = await prepare("two", busyboxImage({ dataBytes: 1 << 20, marker: "two" }));
    // the registry far away: every blob GET held 400 ms
    const far = await startDelayProxy({ target: registry.host, delayMs: 400 });
    const agent = await startAgent(join(work, "root-two"), ["--plain-http", "--prefetch", "off"]);
    try {
      const dir = join(work, "mnt-two");
      await mount(agent, two.lazy.replace(registry.host, far.host), dir);
      far.reset();
      const [a, b] = await Promise.all([readFile(join(dir, "app/data.bin")), readFile(join(dir, "bin/busybox"))]);
      expect(a.length).toBe(1 << 20);
      expect(b.length).toBeGreaterThan(0);
      expect(far.blobRequests).toBeGreaterThanOrEqual(2);
      expect(far.maxInFlight).toBeGreaterThanOrEqual(2);
    } finally {
      await agent.stop();
      await far.stop();
    }
  });

  it("after prefetch completes every file reads with the registry stopped", async () => {
    const edge = await prepare("edge2", edgeCaseImage({ chunkSize: CHUNK, smallFileCount: 500, seed: 5 }).layers);
    const agent = await startAgent(join(work, "root-prefetch"), ["--plain-http", "--prefetch", "on", "--fetch-timeout", "3s"]);
    const dir = join(work, "mnt-prefetch");
    try {
      await mount(agent, edge.lazy, dir);
      await waitFor("prefetch", () => prefetchFinished(agent));
      await registry.halt();
      try {
        await run("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"]);
        expect(diffTrees(edge.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
      } finally {
        await registry.restart();
      }
    } finally {
      await agent.stop();
    }
  });

  it("block mode: a metadata walk asks the agent nothing; a wholly local layer's next mount asks it nothing at all", async () => {
    const edge = await prepare("edge-local", edgeCaseImage({ chunkSize: CHUNK, smallFileCount: 300, seed: 9 }).layers);
    const root = join(work, "root-local");
    const agent = await startAgent(root, ["--plain-http", "--prefetch", "on", "--layer-mode", "block"]);
    const status = () => callAgent<AgentStatus>(agent.root, "GET", "/v1/status");
    try {
      const first = join(work, "mnt-local-1");
      await mount(agent, edge.lazy, first);
      expect((await status()).layers).toMatchObject({ mode: "block", block: 5, local: 0 });
      await run("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"]);
      const before = (await status()).layers.requests;
      await run("find", [first, "-printf", "%m %s %u %g %T@\n"]);
      expect((await status()).layers.requests).toBe(before);
      // streamed in whole: each layer's stream is kept as a local file for its next mounts
      await waitFor("prefetch", () => prefetchFinished(agent));
      await waitFor("local streams", async () => ((await readdir(join(root, "streams")).catch(() => [] as string[])).filter((n) => !n.includes(".tmp-")).length === 5 ? true : undefined), 60_000);
      await callAgent(agent.root, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(first)}`);
      const second = join(work, "mnt-local-2");
      await mount(agent, edge.lazy, second);
      expect((await status()).layers).toMatchObject({ block: 5, local: 5 });
      await run("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"]);
      const quiet = (await status()).layers.requests;
      expect(diffTrees(edge.original, await snapshotTree(second), { layeredHardlinks: true })).toEqual([]);
      expect((await status()).layers.requests).toBe(quiet);
    } finally {
      await agent.stop();
    }
  });

  it("records the chunks read just after a mount and prefetches them first on the next mount", async () => {
    const img = largeImage({ totalBytes: 16 << 20, seed: 11 });
    const rec = await prepare("record", img.layers, 256 * 1024);
    const agent = await startAgent(join(work, "root-record"), ["--plain-http", "--prefetch", "on", "--prefetch-rate", "64k", "--startup-window", "1s"]);
    const dir = join(work, "mnt-record");
    try {
      await mount(agent, rec.lazy, dir);
      await readFile(join(dir, img.smallFile.path));
      await new Promise((r) => setTimeout(r, 1500));
      expect((await runShoal(["umount", "--root", agent.root, dir])).code).toBe(0);
      await mount(agent, rec.lazy, dir);
      const s = await callAgent<AgentStatus>(agent.root, "GET", "/v1/status");
      const p = s.images[0]!.prefetch!;
      expect(p.startupChunks).toBeGreaterThan(0);
      // the small file lives in the last layer: the recorded order starts there
      expect(p.head[0]![0]).toBe(img.smallFile.layerIndex);

      // the order travels with the image: exported, embedded by convert, used by a fresh agent
      const exported = await runShoal(["startup-order", "--root", agent.root, dir]);
      expect(exported.code, exported.stderr).toBe(0);
      const orderFile = join(work, "order.json");
      const { writeFile } = await import("node:fs/promises");
      await writeFile(orderFile, exported.stdout);
      const order = JSON.parse(exported.stdout.toString()) as { chunkSize: number; layers: Record<string, number[]> };
      expect(order.chunkSize).toBe(256 * 1024);
      const traced = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "262144", "--startup-order", orderFile, `${registry.host}/record:v1`, `${registry.host}/record:traced`]);
      expect(traced.code, traced.stderr).toBe(0);
      expect(traced.stderr).toMatch(/startup chunks/);
      const fresh = await startAgent(join(work, "root-record-2"), ["--plain-http", "--prefetch", "on", "--prefetch-rate", "1k"]);
      try {
        await mount(fresh, `${registry.host}/record:traced`, join(work, "mnt-traced"));
        const st = await waitFor("startup chunks", async () => {
          const s2 = await callAgent<AgentStatus>(fresh.root, "GET", "/v1/status");
          const p2 = s2.images[0]?.prefetch;
          return p2 && p2.startupChunks > 0 && p2.chunksDone >= p2.startupChunks ? p2 : undefined;
        }, 30_000);
        expect(st.head[0]![0]).toBe(img.smallFile.layerIndex);
        // at 1 KiB/s the rest of the image is not coming: the startup chunks came first, unthrottled
        expect(st.chunksDone).toBeLessThan(st.chunksTotal);
      } finally {
        await fresh.stop();
      }
    } finally {
      await agent.stop();
    }
  });

  it("a registry outage makes reads fail with EIO in bounded time; they succeed once it is back", async () => {
    const agent = await startAgent(join(work, "root-outage"), ["--plain-http", "--prefetch", "off", "--fetch-timeout", "3s"]);
    const dir = join(work, "mnt-outage");
    try {
      await mount(agent, `${registry.host}/busybox:lazy`, dir);
      await registry.halt();
      const started = Date.now();
      let err: NodeJS.ErrnoException | undefined;
      try {
        await readFile(join(dir, "app/data.bin"));
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      } finally {
        await registry.restart();
      }
      expect(err?.code).toBe("EIO");
      expect(Date.now() - started).toBeLessThan(15_000);
      // a chunk whose deadline passed fails at once for FAILURE_MEMORY_MS (the kernel's re-read after a failed readahead)
      await new Promise((r) => setTimeout(r, FAILURE_MEMORY_MS + 100));
      const ok = await readFile(join(dir, "app/data.bin"));
      expect(ok.length).toBe(8 << 20);
    } finally {
      await agent.stop();
    }
  });

  it("a registry that accepts and never answers: a read fails with EIO within one --fetch-timeout, retries included", async () => {
    const agent = await startAgent(join(work, "root-frozen"), ["--plain-http", "--prefetch", "off", "--fetch-timeout", "3s"]);
    const dir = join(work, "mnt-frozen");
    try {
      await mount(agent, `${registry.host}/busybox:lazy`, dir);
      registry.freeze();
      const started = Date.now();
      let code: string | undefined;
      try {
        const h = await open(join(dir, "app/run.sh"));
        try {
          await h.read(Buffer.alloc(16), 0, 16, 0);
        } finally {
          await h.close();
        }
      } catch (e) {
        code = (e as NodeJS.ErrnoException).code;
      } finally {
        registry.thaw();
      }
      const elapsed = Date.now() - started;
      expect(code).toBe("EIO");
      // one deadline: not one per retry, per source or per request the kernel makes again
      expect(elapsed).toBeLessThan(5_500);
    } finally {
      await agent.stop();
    }
  });

  it("a registry that accepts and never answers: shoal mount and shoal ls end with one clear line, not a hang", async () => {
    const agent = await startAgent(join(work, "root-frozen-cli"), ["--plain-http", "--prefetch", "off", "--fetch-timeout", "3s"]);
    const dir = join(work, "mnt-frozen-cli");
    await mkdir(dir, { recursive: true });
    registry.freeze();
    try {
      // undici waits 300 s for headers by default: each of these would still be waiting when the test times out
      const mounted = await runShoal(["mount", "--root", agent.root, `${registry.host}/never:answered`, dir]);
      expect(mounted.code).toBe(1);
      expect(mounted.stderr.toString().trim().split("\n")).toHaveLength(1);
      expect(mounted.stderr.toString()).toMatch(/SHOAL_ERR_(REGISTRY_UNAVAILABLE|TIMEOUT)/);
      const listed = await runShoal(["ls", "--plain-http", `${registry.host}/never:answered`, "/"]);
      expect(listed.code).toBe(1);
      expect(listed.stderr.toString()).toMatch(/SHOAL_ERR_(REGISTRY_UNAVAILABLE|TIMEOUT)/);
    } finally {
      registry.thaw();
      await agent.stop();
    }
  }, 180_000);

  it("survives SIGKILL during prefetch: mounts come back, no chunk is fetched twice, the tree is intact", async () => {
    const img = largeImage({ totalBytes: 24 << 20, seed: 9 });
    const big = await prepare("kill", img.layers, 256 * 1024);
    const root = join(work, "root-kill");
    const dir = join(work, "mnt-kill");
    const imageBytes = await imageCompressedBytes(big.lazy);
    await registry.settle();
    await registry.resetStats();
    let agent = await startAgent(root, ["--plain-http", "--prefetch", "on", "--prefetch-rate", "8M"]);
    await mount(agent, big.lazy, dir);
    await waitFor("some prefetch", async () => {
      const s = await callAgent<AgentStatus>(root, "GET", "/v1/status");
      const p = s.images[0]?.prefetch;
      return p && p.chunksDone > p.chunksTotal / 4 ? true : undefined;
    });
    await agent.kill();
    agent = await startAgent(root, ["--plain-http", "--prefetch", "on"]);
    try {
      const s = await waitFor("prefetch after restart", () => prefetchFinished(agent));
      expect(s.mounts.map((m) => m.mountpoint)).toEqual([dir]);
      await registry.settle();
      // everything once, plus at most what was in flight at the kill: the background runs
      expect(registry.stats().blobBytes).toBeLessThan(imageBytes + PREFETCH_CONCURRENCY * BACKGROUND_RUN_BYTES);
      expect(diffTrees(big.original, await snapshotTree(dir), { layeredHardlinks: true })).toEqual([]);
    } finally {
      await agent.stop();
    }
  });
});

async function imageCompressedBytes(ref: string): Promise<number> {
  const { RegistryClient, parseReference } = await import("@shoal/oci");
  const r = parseReference(ref);
  const c = new RegistryClient({}, { registry: r.registry, plainHttp: true });
  try {
    const m = (await c.resolveImage(r)).manifest;
    return m.layers.reduce((s, l) => s + l.size, 0);
  } finally {
    await c.close();
  }
}

async function startContainerd(dir: string): Promise<{ address: string; stop: () => Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const address = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  const { writeFile } = await import("node:fs/promises");
  await writeFile(config, `version = 2\nroot = "${dir}/root"\nstate = "${dir}/state"\n[grpc]\n  address = "${address}"\n[ttrpc]\n  address = "${address}.ttrpc"\n[debug]\n  address = ""\n[metrics]\n  address = ""\n[plugins."io.containerd.grpc.v1.cri"]\n  disable_tcp_service = true\n`);
  const child = spawn("containerd", ["--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr!.on("data", (d: Buffer) => (log += d.toString()));
  await waitFor("containerd", async () => {
    if (child.exitCode !== null) throw new Error(`containerd exited: ${log}`);
    try {
      await run("ctr", ["--address", address, "version"]);
      return true;
    } catch {
      return undefined;
    }
  }, 30_000);
  return {
    address,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
      await unmountAllUnder(dir);
    },
  };
}
