import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  diffTrees, edgeCaseImage, snapshotTree, type TreeSnapshot,
} from "@shoal/testkit";
import { LayerFilesystem, mountOverlay, type LayerSnapshot } from "../../src/fs/index.ts";
import { Cleanup, edgeLayersBesideUmoci, memoryLayer, stack, tempDir } from "./helpers.ts";

const CHUNK = 65536;

interface Compared {
  merged: TreeSnapshot;
  umoci: TreeSnapshot;
  fs: LayerFilesystem;
}

/**
 * Mount the edge-case image's layers through the layer filesystem, stack them
 * with the kernel's overlayfs (read-only) and snapshot the merged tree next to
 * umoci's unpack of the same image. With `shareLowerInodes` false the
 * resolver leaves out layer ids, so a cross-layer hardlink is a copy.
 */
async function compareWithUmoci(crossLayerHardlink: boolean, shareLowerInodes = true): Promise<Compared> {
  const cleanup = new Cleanup();
  try {
    const work = cleanup.dir(await tempDir("merge"));
    const { layers, umoci } = await edgeLayersBesideUmoci(work, { crossLayerHardlink, chunkSize: CHUNK });
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    for (const s of stack(layers)) fs.addLayer(shareLowerInodes ? s : withoutLayerIds(s));
    await fs.mount();
    const target = cleanup.mount(join(work, "merged"));
    await mkdir(target);
    await mountOverlay({ lowerdirs: layers.map((l) => fs.layerPath(l.id)).reverse(), target });
    const merged = await snapshotTree(target, { xattrs: true });
    return { merged, umoci, fs };
  } finally {
    await cleanup.run();
  }
}

function withoutLayerIds(s: LayerSnapshot): LayerSnapshot {
  const inner = s.resolveLower;
  return inner ? { ...s, resolveLower: (p) => { const r = inner(p); return r && { entry: r.entry, data: r.data }; } } : s;
}

describe("overlayfs over the layer filesystem equals umoci unpack", () => {
  let plain: Compared;
  let cross: Compared;
  let crossCopy: Compared;

  beforeAll(async () => {
    plain = await compareWithUmoci(false);
    cross = await compareWithUmoci(true);
    crossCopy = await compareWithUmoci(true, false);
  }, 300_000);

  it("the edge-case image without cross-layer hardlinks: no differences at all", () => {
    expect(plain.umoci.xattrsCaptured && plain.merged.xattrsCaptured).toBe(true);
    expect(plain.umoci.size).toBeGreaterThan(3000);
    expect(diffTrees(plain.umoci, plain.merged)).toEqual([]);
    // Spot checks that the comparison saw what matters.
    expect(plain.merged.get("xattr/user")?.xattrs).toMatchObject({ "user.comment": Buffer.from("hello").toString("hex"), "trusted.shoal": "31" });
    expect(plain.merged.get("meta/mtime-frac")?.mtimeNs).toBe(1_234_567_890_123_456_789n);
    expect(plain.merged.get("links/hard1")?.hardlinks).toEqual(["links/hard1", "links/hard2", "links/target.txt"]);
    expect(plain.merged.has("wh/gone-file.txt")).toBe(false);
    expect(plain.merged.has("opaque/old1")).toBe(false);
    expect(plain.fs.counters.ops.read).toBeGreaterThan(0);
    expect(plain.fs.counters.errors).toEqual({});
  });

  it("with a hardlink into a lower layer: no differences either (the link shares the lower layer's inode)", () => {
    expect(cross.umoci.get("links/cross")?.hardlinks).toEqual(["links/cross", "links/hard1", "links/hard2", "links/target.txt"]);
    expect(diffTrees(cross.umoci, cross.merged)).toEqual([]);
  });

  it("when the lower file cannot be shared (no layer id), the link is a copy: only its hardlink grouping differs", () => {
    const group = ["links/cross", "links/hard1", "links/hard2", "links/target.txt"];
    // overlayfs cannot merge two inodes into one, so the copy is a separate inode.
    expect(diffTrees(crossCopy.umoci, crossCopy.merged)).toEqual([
      `links/cross: hardlinks ${JSON.stringify(group)} != -`,
      `links/hard1: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
      `links/hard2: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
      `links/target.txt: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
    ]);
    expect(diffTrees(crossCopy.umoci, crossCopy.merged, { ignore: ["hardlinks"] })).toEqual([]);
  });
});

describe("a writable overlay (container rootfs) over the layer filesystem", () => {
  const cleanup = new Cleanup();
  let target: string;

  beforeAll(async () => {
    const work = cleanup.dir(await tempDir("rw"));
    const fixture = edgeCaseImage({ chunkSize: CHUNK, crossLayerHardlink: true, smallFileCount: 10 });
    const layers = await Promise.all(fixture.layers.map((l, i) => memoryLayer(`l${i}`, l.tar, CHUNK)));
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    for (const s of stack(layers)) fs.addLayer(s);
    await fs.mount();
    target = cleanup.mount(join(work, "rootfs"));
    await Promise.all(["rootfs", "upper", "work"].map((d) => mkdir(join(work, d))));
    await mountOverlay({
      lowerdirs: layers.map((l) => fs.layerPath(l.id)).reverse(), target, upperdir: join(work, "upper"), workdir: join(work, "work"),
    });
  }, 120_000);

  afterAll(async () => {
    await cleanup.run();
  });

  it("copies up on write, whites out on delete and keeps lower bytes", async () => {
    const before = await readFile(join(target, "etc/passwd"), "utf8");
    await writeFile(join(target, "etc/passwd"), `${before}app:x:1000:1000::/app:/bin/sh\n`);
    expect(await readFile(join(target, "etc/passwd"), "utf8")).toContain("app:x:1000");
    await rm(join(target, "wh/keep.txt"));
    await expect(stat(join(target, "wh/keep.txt"))).rejects.toMatchObject({ code: "ENOENT" });
    await writeFile(join(target, "new-file"), "hello\n");
    expect(await readFile(join(target, "new-file"), "utf8")).toBe("hello\n");
    expect(await readFile(join(target, "links/cross"), "utf8")).toBe("hardlink target\n");
    await mkdir(join(target, "opaque/more"));
    expect((await stat(join(target, "usr/bin/setuid"))).mode & 0o7777).toBe(0o4755);
  });

  it("opens device nodes through the overlay although the layer mount is nodev", async () => {
    expect((await readFile(join(target, "dev/null"))).length).toBe(0);
  });
});
