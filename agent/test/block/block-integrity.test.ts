import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes, writeTar } from "@shoal/testkit";
import { BlockLayers } from "../../src/block/block-layers.ts";
import { KernelMounter } from "../../src/block/kernel-mount.ts";
import { LayerFilesystem, readMountInfo } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, tempDir } from "../fs/helpers.ts";

const CHUNK = 65536;
const PAGE = 4096;

/**
 * A layer whose blob has one flipped byte, mounted in block mode: reads
 * that need that chunk fail with EIO, every other read gets the true bytes,
 * and no read ever returns a wrong one.
 */
describe("block mode never hands out a byte its chunk did not verify", () => {
  const cleanup = new Cleanup();
  const mounter = new KernelMounter();
  let block: BlockLayers;
  let dir: string;
  const good = Buffer.from(randomBytes(1, 100_000));
  const bad = Buffer.from(randomBytes(2, 300_000));
  let badOffset = 0;
  let flipped = { from: 0, to: 0 };

  beforeAll(async () => {
    const work = cleanup.dir(await tempDir("integrity"));
    const { tar, layout } = writeTar([{ path: "good", type: "file", data: good }, { path: "bad", type: "file", data: bad }]);
    const layer = await memoryLayer("flipped", tar, CHUNK);
    badOffset = layout.find((l) => l.path === "bad")!.dataOffset;
    // flip a byte of the compressed chunk holding the middle of "bad"
    const c = layer.index.chunk(layer.index.chunksForRange(badOffset + 150_000, 1)!.first);
    layer.blob[c.offset + Math.floor(c.length / 2)]! ^= 0xff;
    flipped = { from: c.uncompressedOffset - badOffset, to: c.uncompressedOffset + c.uncompressedLength - badOffset };
    const fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    await fs.mount();
    block = new BlockLayers({ inner: fs, mounter, logger: pino({ level: "silent" }) }, { imageDir: join(work, "images"), mountDir: join(work, "erofs"), streamDir: join(work, "streams") });
    cleanup.between(() => block.unmountAll());
    block.addLayer({ id: layer.id, index: layer.index, data: layer.data });
    await block.ready(layer.id);
    dir = block.layerPath(layer.id);
    await mkdir(join(work, "unused"));
  }, 60_000);

  afterAll(async () => {
    await cleanup.run();
    await mounter.close();
  });

  it("is mounted as erofs", async () => {
    expect((await readMountInfo()).find((m) => m.mountpoint === dir)?.fstype).toBe("erofs");
  });

  it("a file whose chunks verify reads whole and true", async () => {
    expect((await readFile(join(dir, "good"))).equals(good)).toBe(true);
  });

  it("the file with the flipped chunk never reads whole; page by page, what reads is true and what cannot is EIO", async () => {
    // a read that gets some pages before the bad one returns those (POSIX); the next one fails
    const whole = await readFile(join(dir, "bad")).catch((e: NodeJS.ErrnoException) => e);
    if (whole instanceof Buffer) {
      expect(whole.length).toBeLessThanOrEqual(flipped.from);
      expect(whole.equals(bad.subarray(0, whole.length))).toBe(true);
    } else expect((whole as NodeJS.ErrnoException).code).toBe("EIO");
    const fh = await open(join(dir, "bad"));
    let ok = 0;
    let failed = 0;
    try {
      for (let at = 0; at < bad.length; at += PAGE) {
        const buf = Buffer.alloc(Math.min(PAGE, bad.length - at));
        try {
          await fh.read(buf, 0, buf.length, at);
          expect(buf.equals(bad.subarray(at, at + buf.length)), `page at ${at}`).toBe(true);
          ok++;
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe("EIO");
          // only pages that need the flipped chunk (or share an erofs read with it) may fail
          expect(at + PAGE * 32 > flipped.from && at < flipped.to + PAGE * 32, `page at ${at} failed`).toBe(true);
          failed++;
        }
      }
    } finally {
      await fh.close();
    }
    expect(failed).toBeGreaterThan(0);
    expect(ok).toBeGreaterThan(0);
  });
});
