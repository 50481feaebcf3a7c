// Both ways of reading /dev/fuse (fuse-reader.ts) serve the same session:
// the poll reader on the main thread's event loop (the default) and the
// worker-thread reader. Each mounts, answers another process's reads, ends
// when unmounted from outside, and closes its device fd.
import { execFile } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { textBytes, waitFor, writeTar } from "@shoal/testkit";
import { FuseDevice, InProcessMounter, LayerFilesystem, unmountPath, type FuseReaderKind } from "../../src/fs/index.ts";
import { MAX_WRITE } from "../../src/fs/constants.ts";
import { POLL_READ_BUFFER } from "../../src/fs/fuse-reader.ts";
import { Cleanup, memoryLayer, readInChild, tempDir } from "./helpers.ts";

const exec = promisify(execFile);
const silent = pino({ level: "silent" });
const openFds = () => readdirSync("/proc/self/fd").length;

describe("reading /dev/fuse", () => {
  const cleanup = new Cleanup();

  afterAll(async () => {
    await cleanup.run();
  });

  it("announces a max_write whose WRITE fits one poll read (the kernel refuses smaller read buffers)", () => {
    // fuse_in_header (40) + fuse_write_in (40) + max_write
    expect(40 + 40 + MAX_WRITE).toBeLessThanOrEqual(POLL_READ_BUFFER);
  });

  it("reads on the main thread's event loop by default", async () => {
    const work = cleanup.dir(await tempDir("reader-default"));
    const device = new FuseDevice({ logger: silent }, { mountpoint: join(work, "mnt"), fsName: "shoaltest", readAheadKb: 0 });
    await device.mount();
    try {
      expect(device.readerKind).toBe("poll");
      expect(device.mounted).toBe(true);
    } finally {
      await device.unmount();
    }
    expect(device.mounted).toBe(false);
  });

  for (const kind of ["poll", "thread"] as FuseReaderKind[]) {
    it(`${kind}: serves another process's reads, ends on an outside unmount and closes its fd`, async () => {
      const work = cleanup.dir(await tempDir(`reader-${kind}`));
      const files = Array.from({ length: 40 }, (_, i) => ({ path: `d/f${i}`, type: "file" as const, data: textBytes(i, 1000 + i * 4099) }));
      const layer = await memoryLayer("l", writeTar(files).tar, 16384);
      const fdsBefore = openFds();
      const fs = cleanup.fs(new LayerFilesystem({ mounter: new InProcessMounter({ logger: silent }, { reader: kind }) }, { mountpoint: join(work, "layers") }));
      await fs.mount();
      fs.addLayer(layer);
      const got = await readInChild(files.map((f) => join(fs.layerPath("l"), f.path)));
      const { createHash } = await import("node:crypto");
      expect(got).toEqual(files.map((f) => createHash("sha256").update(f.data).digest("hex")));
      expect((await exec("stat", ["-c", "%s", join(fs.layerPath("l"), "d/f3")])).stdout.trim()).toBe(String(1000 + 3 * 4099));
      // ended from outside: the session notices, and unmount still closes the device fd
      await unmountPath(fs.mountpoint);
      await waitFor("the session to end", async () => (fs.mounted ? undefined : true), 10_000);
      await fs.unmount();
      expect(openFds()).toBe(fdsBefore);
    });
  }
});
