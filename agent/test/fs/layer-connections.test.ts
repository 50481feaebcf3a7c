// Layers over two FUSE connections: those without xattrs where the kernel stops asking for them, the rest where they are served.
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { diffTrees, edgeCaseImage, readXattrs, snapshotTree, umociUnpack, writeImageLayout, writeTar, type TarSpec, type TreeSnapshot } from "@shoal/testkit";
import { pino } from "pino";
import { InProcessMounter, LayerConnections, mountOverlay, type FuseMounter } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, stack, tempDir } from "./helpers.ts";

const CHUNK = 65536;
const t = (s: string) => new TextEncoder().encode(s);
const EOPNOTSUPP = 95;
const ENODATA = 61;

// getxattr and listxattr of each path, twice, from another process (as a container would)
const ASK_XATTRS = `
import json, os, sys
out = []
for p in json.load(sys.stdin):
    for _ in range(2):
        try:
            os.getxattr(p, "user.absent", follow_symlinks=False); out.append("value")
        except OSError as e:
            out.append(e.errno)
        try:
            out.append(len(os.listxattr(p, follow_symlinks=False)))
        except OSError as e:
            out.append(-e.errno)
print(json.dumps(out))
`;

function askXattrs(paths: readonly string[]): Promise<Array<number | string>> {
  return new Promise((resolve, reject) => {
    const child = execFile("python3", ["-c", ASK_XATTRS], (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as Array<number | string>)));
    child.stdin!.end(JSON.stringify(paths));
  });
}

describe("layers over two connections (with and without xattrs)", () => {
  const cleanup = new Cleanup();
  let fs: LayerConnections;
  let work: string;
  let merged: TreeSnapshot;
  let umoci: TreeSnapshot;
  let edgeIds: string[];

  beforeAll(async () => {
    work = cleanup.dir(await tempDir("conns"));
    const fixture = edgeCaseImage({ chunkSize: CHUNK, crossLayerHardlink: true });
    const layout = await writeImageLayout(join(work, "layout"), fixture.layers, { tag: "v1" });
    umoci = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "bundle"))).rootfs, { xattrs: true });
    const edge = await Promise.all(fixture.layers.map((l, i) => memoryLayer(`l${i}-${l.name}`, l.tar, CHUNK)));
    edgeIds = edge.map((l) => l.id);
    const files = (prefix: string, xattrs?: Record<string, string>): TarSpec[] => [
      { path: "d", type: "dir", ...(xattrs ? { xattrs } : {}) },
      ...Array.from({ length: 10 }, (_, i): TarSpec => ({ path: `d/f${i}`, type: "file", data: t(`${prefix} ${i}\n`), ...(xattrs ? { xattrs } : {}) })),
    ];
    const plain = await memoryLayer("plain", writeTar(files("plain")).tar);
    const tagged = await memoryLayer("tagged", writeTar(files("tagged", { "user.tag": "yes" })).tar);
    // no xattr of its own, but its directory d has no entry here: it shows the lower one's, xattr and all
    const above = await memoryLayer("above", writeTar([{ path: "d/new", type: "file", data: t("new\n") }]).tar);
    fs = new LayerConnections({}, { mountpoint: join(work, "layers"), plainMountpoint: join(work, "layers-plain") });
    cleanup.fs(fs.withXattrs);
    cleanup.fs(fs.plain);
    for (const s of [...stack(edge), ...stack([plain]), ...stack([tagged, above])]) fs.addLayer(s);
    await fs.mount();
    const target = cleanup.mount(join(work, "merged"));
    await mkdir(target);
    await mountOverlay({ lowerdirs: edgeIds.map((id) => fs.layerPath(id)).reverse(), target });
    merged = await snapshotTree(target, { xattrs: true });
  }, 300_000);

  afterAll(async () => {
    await cleanup.run();
  }, 60_000);

  it("stacks the edge-case image from both connections into what umoci unpacks, xattrs included", () => {
    const where = edgeIds.map((id) => (fs.plain.has(id) ? "plain" : fs.withXattrs.has(id) ? "xattrs" : "none"));
    expect(where).toContain("plain");
    expect(where).toContain("xattrs");
    expect(merged.xattrsCaptured && umoci.xattrsCaptured).toBe(true);
    expect(diffTrees(umoci, merged)).toEqual([]);
    expect(merged.get("xattr/user")?.xattrs).toMatchObject({ "user.comment": Buffer.from("hello").toString("hex") });
  });

  it("asks a layer without xattrs for one once, then never again (callers see EOPNOTSUPP); lists none", async () => {
    expect(fs.layerPath("plain")).toBe(join(work, "layers-plain", "plain"));
    const before = { ...fs.plain.counters.ops };
    const paths = Array.from({ length: 10 }, (_, i) => join(fs.layerPath("plain"), "d", `f${i}`));
    const answers = await askXattrs(paths);
    expect(answers).toEqual(paths.flatMap(() => [EOPNOTSUPP, 0, EOPNOTSUPP, 0]));
    const asked = (op: string) => (fs.plain.counters.ops[op] ?? 0) - (before[op] ?? 0);
    // 20 getxattr calls: at most the first reached the agent; every listxattr did
    expect(asked("getxattr")).toBeLessThanOrEqual(1);
    expect(asked("listxattr")).toBe(20);
  });

  it("serves the xattrs of a layer that has them, every time they are asked", async () => {
    expect(fs.layerPath("tagged")).toBe(join(work, "layers", "tagged"));
    const before = fs.withXattrs.counters.ops.getxattr ?? 0;
    const paths = Array.from({ length: 10 }, (_, i) => join(fs.layerPath("tagged"), "d", `f${i}`));
    const answers = await askXattrs(paths);
    expect(answers).toEqual(paths.flatMap(() => [ENODATA, 1, ENODATA, 1]));
    expect((fs.withXattrs.counters.ops.getxattr ?? 0) - before).toBeGreaterThanOrEqual(20);
    const read = await readXattrs([paths[0]!]);
    expect(read.get(paths[0]!)).toMatchObject({ "user.tag": Buffer.from("yes").toString("hex") });
  });

  it("puts a layer that takes an xattr from below with the xattrs, where it shows it", async () => {
    expect(fs.withXattrs.has("above")).toBe(true);
    expect(fs.plain.has("above")).toBe(false);
    const dir = join(fs.layerPath("above"), "d");
    expect((await readXattrs([dir])).get(dir)).toMatchObject({ "user.tag": Buffer.from("yes").toString("hex") });
  });

  it("moves no layer between connections when it is removed and added again, and refuses a duplicate", async () => {
    const [again] = stack([await memoryLayer("plain", writeTar([{ path: "d/f0", type: "file", data: t("plain 0\n") }]).tar)]);
    expect(() => fs.addLayer(again!)).toThrow(/already/);
    expect(fs.removeLayer("plain")).toBe(true);
    expect(fs.has("plain")).toBe(false);
    fs.addLayer(again!);
    expect(fs.plain.has("plain")).toBe(true);
    expect(fs.layerCount).toBe(edgeIds.length + 3);
  });
});

describe("a layer that a connection of an earlier agent already held", () => {
  const cleanup = new Cleanup();
  afterAll(async () => {
    await cleanup.run();
  }, 60_000);

  it("stays on it, xattrs or not (overlays on its old directory keep working)", async () => {
    const work = cleanup.dir(await tempDir("conns-held"));
    const mountpoint = join(work, "layers");
    const inner = new InProcessMounter({ logger: pino({ level: "silent" }) });
    // the xattr connection comes with the slot table an agent from before the split left on it
    const mounter: FuseMounter = {
      attach: async (init, opts) => {
        const t = await inner.attach(init, opts);
        if (init.mountpoint === mountpoint) t.saveState({ next: 2, ids: { old: 1 } });
        return t;
      },
      ready: () => inner.ready(),
      close: () => inner.close(),
    };
    const fs = new LayerConnections({ mounter }, { mountpoint, plainMountpoint: join(work, "layers-plain") });
    cleanup.fs(fs.withXattrs);
    cleanup.fs(fs.plain);
    await fs.mount();
    const files = writeTar([{ path: "f", type: "file", data: t("no xattrs\n") }]).tar;
    const [old] = stack([await memoryLayer("old", files)]);
    const [fresh] = stack([await memoryLayer("fresh", files)]);
    fs.addLayer(old!);
    fs.addLayer(fresh!);
    expect(fs.layerPath("old")).toBe(join(mountpoint, "old"));
    expect(fs.layerPath("fresh")).toBe(join(work, "layers-plain", "fresh"));
    const [answer] = await askXattrs([join(fs.layerPath("old"), "f")]);
    expect(answer).toBe(ENODATA);
  });
});
