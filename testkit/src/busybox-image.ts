import { readFileSync } from "node:fs";
import type { LayerSpec } from "./image-layout.ts";
import { writeTar, type TarSpec } from "./tar-writer.ts";

/** Applets linked in the sample image. */
const APPLETS = ["sh", "ls", "cat", "echo", "sha256sum", "wc", "head", "find", "sleep", "true"];

/**
 * A two-layer image built from Debian's busybox-static: a base with
 * /bin/busybox and applet symlinks, and an app layer with a script and a
 * few MiB of data, so lazy reads have something to skip.
 */
export function busyboxImage(opts: { dataBytes?: number; marker?: string } = {}): LayerSpec[] {
  const busybox = readFileSync("/bin/busybox");
  const dir = (path: string): TarSpec => ({ path, type: "dir", mode: 0o755 });
  const base: TarSpec[] = [
    dir("bin"), dir("etc"), dir("tmp"), dir("proc"), dir("dev"), dir("sys"), dir("root"),
    { path: "bin/busybox", type: "file", mode: 0o755, data: busybox },
    ...APPLETS.map((a): TarSpec => ({ path: `bin/${a}`, type: "symlink", linkname: "busybox" })),
    { path: "etc/passwd", type: "file", mode: 0o644, data: Buffer.from("root:x:0:0:root:/root:/bin/sh\n") },
    // a different marker makes a different base layer (another diffID), so images do not share it
    ...(opts.marker ? [{ path: "etc/marker", type: "file", mode: 0o644, data: Buffer.from(opts.marker) } satisfies TarSpec] : []),
  ];
  const n = opts.dataBytes ?? 8 << 20;
  const data = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data.writeUInt32LE(x, i);
  }
  const app: TarSpec[] = [
    dir("app"),
    { path: "app/run.sh", type: "file", mode: 0o755, data: Buffer.from("#!/bin/sh\necho \"hello from a lazy image\"\n") },
    { path: "app/data.bin", type: "file", mode: 0o644, data },
  ];
  return [
    { tar: writeTar(base).tar, compression: "gzip" },
    { tar: writeTar(app).tar, compression: "gzip" },
  ];
}
