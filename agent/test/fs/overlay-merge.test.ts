import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  diffTrees, edgeCaseImage, snapshotTree, umociUnpack, writeImageLayout, type TreeSnapshot,
} from "@shoal/testkit";
import { LayerFilesystem, mountOverlay } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, stack, tempDir } from "./helpers.ts";

const CHUNK = 65536;

/**
 * Mount the edge-case image's layers through the layer filesystem, stack them
 * with the kernel's overlayfs and compare the merged tree with umoci's unpack.
 */
async function compareWithUmoci(crossLayerHardlink: boolean): Promise<{ merged: TreeSnapshot; umoci: TreeSnapshot; fs: LayerFilesystem }> {
  const cleanup = new Cleanup();
  try {
    const work = cleanup.dir(await tempDir("merge"));
    const fixture = edgeCaseImage({ chunkSize: CHUNK, crossLayerHardlink });
    const layout = await writeImageLayout(join(work, "layout"), fixture.layers, { tag: "v1" });
    const umoci = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "bundle"))).rootfs, { xattrs: true });
    const layers = await Promise.all(fixture.layers.map((l, i) => memoryLayer(`l${i}-${l.name}`, l.tar, CHUNK)));
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    for (const s of stack(layers)) fs.addLayer(s);
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

describe("overlayfs over the layer filesystem equals umoci unpack", () => {
  let plain: Awaited<ReturnType<typeof compareWithUmoci>>;
  let cross: Awaited<ReturnType<typeof compareWithUmoci>>;

  beforeAll(async () => {
    plain = await compareWithUmoci(false);
    cross = await compareWithUmoci(true);
  }, 300_000);

  afterAll(() => {
    // compareWithUmoci unmounts in its own finally blocks.
  });

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
    expect(cross.umoci.get("links/cross")?.hardlinks).toContain("links/target.txt");
    expect(diffTrees(cross.umoci, cross.merged)).toEqual([]);
  });
});
