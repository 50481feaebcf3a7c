// The FUSE keeper with real FUSE mounts: it relays requests to the agent of
// the moment, holds them while none is ready, replays what an agent left
// unanswered, gives the next agent the node ids the kernel holds, and gives
// up (EIO) after its hold time. Reads come from other processes (cat, stat),
// as a container's would.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor, writeTar } from "@shoal/testkit";
import { LayerFilesystem, mountOverlay, type LayerData } from "../../src/fs/index.ts";
import { FuseKeeper, KeeperMounter } from "../../src/keeper/index.ts";
import { Frame, FrameReader, frame } from "../../src/keeper/protocol.ts";
import { Cleanup, memoryLayer, tempDir, type MemoryLayer } from "../fs/helpers.ts";

const exec = promisify(execFile);
const t = (s: string) => new TextEncoder().encode(s);
const silent = pino({ level: "silent" });

describe("FrameReader", () => {
  it("cuts frames however the bytes arrive", () => {
    const frames = [frame(Frame.REQUEST, 7, Buffer.from("abc")), frame(Frame.READY, 0), frame(Frame.REPLY, 1, [Buffer.alloc(70_000, 1), Buffer.from("z")])];
    const bytes = Buffer.concat(frames.flat());
    for (const step of [1, 3, 9, 4096, bytes.length]) {
      const got: Array<[number, number, number]> = [];
      const r = new FrameReader((type, session, payload) => got.push([type, session, payload.length]));
      for (let i = 0; i < bytes.length; i += step) r.push(bytes.subarray(i, i + step));
      expect(got).toEqual([[Frame.REQUEST, 7, 3], [Frame.READY, 0, 0], [Frame.REPLY, 1, 70_001]]);
    }
  });
});

describe("the FUSE keeper", () => {
  const cleanup = new Cleanup();
  let work: string;
  let keeper: FuseKeeper;
  let layers: Record<"a" | "b" | "c", MemoryLayer>;
  let mountpoint: string;

  beforeAll(async () => {
    work = cleanup.dir(await tempDir("keeper"));
    mountpoint = join(work, "layers");
    keeper = new FuseKeeper({ logger: silent }, { socket: join(work, "keeper.sock"), holdMs: 0 });
    await keeper.start();
    const files = (tag: string) => writeTar([
      { path: "dir", type: "dir" },
      ...["one", "two", "three", "four"].map((n) => ({ path: `dir/${n}`, type: "file" as const, data: t(`${tag} ${n}\n`) })),
    ]).tar;
    layers = { a: await memoryLayer("a", files("a")), b: await memoryLayer("b", files("b")), c: await memoryLayer("c", files("c")) };
  });

  afterAll(async () => {
    await keeper?.stop();
    await cleanup.run();
  });

  /** An "agent": a mounter on the keeper and a layer filesystem with `ids` added in that order (data overridable). */
  async function agent(ids: Array<keyof typeof layers>, data: Partial<Record<string, LayerData>> = {}): Promise<{ fs: LayerFilesystem; mounter: KeeperMounter }> {
    const mounter = new KeeperMounter({ logger: silent }, { socket: join(work, "keeper.sock"), command: ["false"], logFile: join(work, "unused.log") });
    const fs = new LayerFilesystem({ mounter }, { mountpoint });
    await fs.mount();
    for (const id of ids) fs.addLayer({ id, index: layers[id].index, data: data[id] ?? layers[id].data });
    mounter.ready();
    return { fs, mounter };
  }

  const cat = async (path: string) => (await exec("cat", [path])).stdout;

  it("relays requests to the agent, holds them while none is ready, and gives the next agent the node ids the kernel holds", async () => {
    const first = await agent(["a", "b"]);
    expect(first.fs.adopted).toBe(false);
    expect(await cat(join(mountpoint, "b/dir/one"))).toBe("b one\n");
    const inode = (await exec("stat", ["-c", "%i", join(mountpoint, "b/dir")])).stdout;
    await first.mounter.close();
    // the kernel knows b/dir's node id; "two" has never been looked up: this LOOKUP names the old id
    const held = keeper.counters.held;
    const reading = cat(join(mountpoint, "b/dir/two"));
    await waitFor("the read to be held", async () => (keeper.counters.held > held ? true : undefined), 10_000);
    // the next agent adds its layers in another order, one more first
    const next = await agent(["c", "a", "b"]);
    expect(next.fs.adopted).toBe(true);
    expect(await reading).toBe("b two\n");
    expect(await cat(join(mountpoint, "a/dir/three"))).toBe("a three\n");
    expect((await exec("stat", ["-c", "%i", join(mountpoint, "b/dir")])).stdout).toBe(inode);
    await next.mounter.close();
  });

  it("replays to the next agent a request the last one left unanswered", async () => {
    let started: () => void = () => undefined;
    const inFlight = new Promise<void>((res) => (started = res));
    const hung: LayerData = { read: () => (started(), new Promise<Buffer>(() => undefined)) };
    const first = await agent(["c", "b", "a"], { a: hung });
    const reading = cat(join(mountpoint, "a/dir/four"));
    await inFlight;
    await first.mounter.close();
    const replayed = keeper.counters.replayed;
    const next = await agent(["a", "b", "c"]);
    expect(await reading).toBe("a four\n");
    expect(keeper.counters.replayed).toBeGreaterThan(replayed);
    await next.mounter.close();
  });
});

describe("the FUSE keeper's hold time", () => {
  const cleanup = new Cleanup();
  let work: string;
  let keeper: FuseKeeper;

  beforeAll(async () => {
    work = cleanup.dir(await tempDir("keeper-hold"));
    keeper = new FuseKeeper({ logger: silent }, { socket: join(work, "keeper.sock"), holdMs: 300 });
    await keeper.start();
  });

  afterAll(async () => {
    await keeper?.stop();
    await cleanup.run();
  });

  it("answers EIO once no agent has come within the hold time, and serves again once one is ready", async () => {
    const layer = await memoryLayer("l", writeTar([{ path: "f", type: "file", data: t("data\n") }, { path: "g", type: "file", data: t("more\n") }]).tar);
    const start = async () => {
      const mounter = new KeeperMounter({ logger: silent }, { socket: join(work, "keeper.sock"), command: ["false"], logFile: join(work, "unused.log") });
      const fs = new LayerFilesystem({ mounter }, { mountpoint: join(work, "layers") });
      await fs.mount();
      fs.addLayer({ id: "l", index: layer.index, data: layer.data });
      mounter.ready();
      return mounter;
    };
    await (await start()).close();
    await expect(exec("cat", [join(work, "layers/l/f")])).rejects.toMatchObject({ stderr: expect.stringMatching(/Input\/output error/) });
    expect(keeper.counters.expired).toBeGreaterThan(0);
    const again = await start();
    expect((await exec("cat", [join(work, "layers/l/g")])).stdout).toBe("more\n");
    await again.close();
  });
});

describe("stopping the FUSE keeper", () => {
  const cleanup = new Cleanup();

  afterAll(() => cleanup.run());

  it("ends a connection that an overlay still holds, so the overlay's readers get an error rather than a hang", async () => {
    const work = cleanup.dir(await tempDir("keeper-stop"));
    const keeper = new FuseKeeper({ logger: silent }, { socket: join(work, "keeper.sock"), holdMs: 0 });
    await keeper.start();
    const layer = await memoryLayer("l", writeTar([{ path: "f", type: "file", data: t("x\n") }, { path: "g", type: "file", data: t("y\n") }]).tar);
    const mounter = new KeeperMounter({ logger: silent }, { socket: join(work, "keeper.sock"), command: ["false"], logFile: join(work, "unused.log") });
    const fs = new LayerFilesystem({ mounter }, { mountpoint: join(work, "layers") });
    await fs.mount();
    fs.addLayer({ id: "l", index: layer.index, data: layer.data });
    mounter.ready();
    const rootfs = cleanup.mount(join(work, "rootfs"));
    await exec("mkdir", [rootfs]);
    // overlayfs clones the lower mount: unmounting the layer directory leaves its connection alive
    await mountOverlay({ lowerdirs: [fs.layerPath("l")], target: rootfs });
    expect((await exec("cat", [join(rootfs, "f")])).stdout).toBe("x\n");
    await mounter.close();
    await keeper.stop();
    await expect(exec("cat", [join(rootfs, "g")])).rejects.toMatchObject({ stderr: expect.stringMatching(/not connected/) });
  });
});
