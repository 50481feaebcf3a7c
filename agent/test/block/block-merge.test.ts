import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { beforeAll, describe, expect, it } from "vitest";
import { diffTrees, snapshotTree, type TreeSnapshot } from "@shoal/testkit";
import { BlockLayers } from "../../src/block/block-layers.ts";
import { KernelMounter } from "../../src/block/kernel-mount.ts";
import { LayerFilesystem, mountOverlay, readMountInfo } from "../../src/fs/index.ts";
import { Cleanup, edgeLayersBesideUmoci, stack, tempDir } from "../fs/helpers.ts";

const CHUNK = 65536;

interface Compared {
  merged: TreeSnapshot;
  umoci: TreeSnapshot;
  fs: LayerFilesystem;
  /** erofs mounts while the overlay stood. */
  erofs: number;
  layers: number;
  /** FUSE requests other than reads of the streams, from mount to snapshot. */
  metadataOps: number;
}

/**
 * Mount the edge-case image's layers in block mode (each layer an erofs
 * image over its stream file), stack them with overlayfs and snapshot the
 * merged tree beside umoci's unpack of the same image.
 */
async function compareWithUmoci(crossLayerHardlink: boolean): Promise<Compared> {
  const cleanup = new Cleanup();
  const mounter = new KernelMounter();
  let block: BlockLayers | undefined;
  try {
    const work = cleanup.dir(await tempDir("block"));
    const { layers, umoci } = await edgeLayersBesideUmoci(work, { crossLayerHardlink, chunkSize: CHUNK });
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    await fs.mount();
    block = new BlockLayers({ inner: fs, mounter, logger: pino({ level: "silent" }) }, { imageDir: join(work, "images"), mountDir: join(work, "erofs"), streamDir: join(work, "streams") });
    for (const s of stack(layers)) {
      block.addLayer(s);
      await block.ready(s.id);
    }
    const target = cleanup.mount(join(work, "merged"));
    await mkdir(target);
    await mountOverlay({ lowerdirs: layers.map((l) => block!.layerPath(l.id)).reverse(), target });
    const erofs = (await readMountInfo()).filter((m) => m.fstype === "erofs" && m.mountpoint.startsWith(work)).length;
    const count = () => Object.entries(fs.counters.ops).filter(([op]) => op !== "read").reduce((s, [, n]) => s + n, 0);
    const before = count();
    const merged = await snapshotTree(target, { xattrs: true });
    return { merged, umoci, fs, erofs, layers: layers.length, metadataOps: count() - before };
  } finally {
    cleanup.between(async () => block?.unmountAll());
    await cleanup.run();
    await mounter.close();
  }
}

describe("block mode: overlayfs over erofs layers equals umoci unpack", () => {
  let plain: Compared;
  let cross: Compared;

  beforeAll(async () => {
    plain = await compareWithUmoci(false);
    cross = await compareWithUmoci(true);
  }, 300_000);

  it("every layer is an erofs mount, and the merged tree has no differences at all", () => {
    expect(plain.erofs).toBe(plain.layers);
    expect(plain.umoci.xattrsCaptured && plain.merged.xattrsCaptured).toBe(true);
    expect(plain.umoci.size).toBeGreaterThan(3000);
    expect(diffTrees(plain.umoci, plain.merged)).toEqual([]);
    expect(plain.merged.get("xattr/user")?.xattrs).toMatchObject({ "user.comment": Buffer.from("hello").toString("hex"), "trusted.shoal": "31" });
    expect(plain.merged.get("meta/mtime-frac")?.mtimeNs).toBe(1_234_567_890_123_456_789n);
    expect(plain.merged.get("links/hard1")?.hardlinks).toEqual(["links/hard1", "links/hard2", "links/target.txt"]);
    expect(plain.merged.has("wh/gone-file.txt")).toBe(false);
    expect(plain.merged.has("opaque/old1")).toBe(false);
  });

  it("file bytes come from the stream files; a metadata walk asks the agent nothing else", () => {
    expect(plain.fs.counters.ops.read).toBeGreaterThan(0);
    expect(plain.metadataOps).toBe(0);
    expect(plain.fs.counters.errors).toEqual({});
  });

  it("a hardlink into a lower layer reads that layer's stream as a second device; it is its own inode (layers are separate filesystems)", () => {
    expect(cross.erofs).toBe(cross.layers);
    const group = ["links/cross", "links/hard1", "links/hard2", "links/target.txt"];
    expect(diffTrees(cross.umoci, cross.merged)).toEqual([
      `links/cross: hardlinks ${JSON.stringify(group)} != -`,
      `links/hard1: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
      `links/hard2: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
      `links/target.txt: hardlinks ${JSON.stringify(group)} != ${JSON.stringify(group.slice(1))}`,
    ]);
    expect(diffTrees(cross.umoci, cross.merged, { ignore: ["hardlinks"] })).toEqual([]);
  });

});
