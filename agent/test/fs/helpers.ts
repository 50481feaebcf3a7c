/**
 * Test helpers for the layer filesystem: in-memory lazy layers built with
 * convertLayer, and mount bookkeeping that always cleans up.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { convertLayer, LayerReader, OCI_LAYER_TAR, type LayerIndex } from "@shoal/blockindex";
import { edgeCaseImage, snapshotTree, umociUnpack, writeImageLayout, type TreeSnapshot } from "@shoal/testkit";
import {
  findMount, lowerResolver, readerLayerData, readMountInfo, unmountPath, type LayerData, type LayerFilesystem, type LayerSnapshot,
} from "../../src/fs/index.ts";

/** A converted layer held in memory. */
export interface MemoryLayer {
  id: string;
  index: LayerIndex;
  data: LayerData;
  /** The lazy blob. */
  blob: Buffer;
  /** The uncompressed tar. */
  tar: Uint8Array;
}

/** Convert `tar` into a lazy blob in memory; its data is read (and verified) chunk by chunk through LayerReader. */
export async function memoryLayer(id: string, tar: Uint8Array, chunkSize = 65536): Promise<MemoryLayer> {
  const parts: Buffer[] = [];
  const converted = await convertLayer([tar], OCI_LAYER_TAR, (b) => void parts.push(b), { chunkSize, level: 1 });
  const blob = Buffer.concat(parts);
  const reader = new LayerReader({
    index: converted.index,
    source: { fetchChunk: async (c) => blob.subarray(c.offset, c.offset + c.length) },
  });
  return { id, index: converted.index, data: readerLayerData(reader), blob, tar };
}

/**
 * The edge-case image's layers held in memory (ids `l<i>-<name>`, bottom
 * first), and umoci's unpack of the same image (xattrs captured): what a
 * stack of them mounted in `work` is compared with.
 */
export async function edgeLayersBesideUmoci(work: string, opts: { crossLayerHardlink: boolean; chunkSize: number }): Promise<{ layers: MemoryLayer[]; umoci: TreeSnapshot }> {
  const fixture = edgeCaseImage(opts);
  const layout = await writeImageLayout(join(work, "layout"), fixture.layers, { tag: "v1" });
  const umoci = await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, "bundle"))).rootfs, { xattrs: true });
  const layers = await Promise.all(fixture.layers.map((l, i) => memoryLayer(`l${i}-${l.name}`, l.tar, opts.chunkSize)));
  return { layers, umoci };
}

/** LayerData over the raw uncompressed tar (no chunks, no inflating). */
export function rawData(tar: Uint8Array): LayerData {
  const buf = Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength);
  return { read: async (offset, length) => buf.subarray(offset, offset + length) };
}

/** Snapshots of `layers` (bottom first), each resolving hardlinks through the ones below. */
export function stack(layers: readonly { id: string; index: LayerIndex; data: LayerData }[]): LayerSnapshot[] {
  const out: LayerSnapshot[] = [];
  for (const l of layers) out.push({ id: l.id, index: l.index, data: l.data, resolveLower: out.length ? lowerResolver([...out]) : undefined });
  return out;
}

/** A temp directory removed by {@link Cleanup}. */
export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-fs-${prefix}-`));
}

/** Unmounts (overlays first, then filesystems) and removes temp dirs, whatever state a test left. */
export class Cleanup {
  private readonly mounts: string[] = [];
  private readonly filesystems: LayerFilesystem[] = [];
  private readonly dirs: string[] = [];
  private readonly betweens: Array<() => Promise<unknown>> = [];

  mount(path: string): string {
    this.mounts.push(path);
    return path;
  }

  fs(fs: LayerFilesystem): LayerFilesystem {
    this.filesystems.push(fs);
    return fs;
  }

  dir(path: string): string {
    this.dirs.push(path);
    return path;
  }

  /** Run `step` after the mounts and before the filesystems (block mode's erofs mounts sit between). */
  between(step: () => Promise<unknown>): void {
    this.betweens.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const m of this.mounts.reverse()) {
      while (await findMount(m)) {
        try {
          await unmountPath(m);
        } catch {
          await unmountPath(m, { lazy: true }).catch((e: unknown) => errors.push(e));
          break;
        }
      }
    }
    for (const step of this.betweens) await step().catch((e: unknown) => errors.push(e));
    for (const f of this.filesystems) await f.unmount().catch((e: unknown) => errors.push(e));
    for (const f of this.filesystems) {
      if (await findMount(f.mountpoint)) await unmountPath(f.mountpoint, { lazy: true }).catch((e: unknown) => errors.push(e));
    }
    for (const d of this.dirs) {
      // Never recurse into something still mounted.
      if (!(await anyMountUnder(d))) await rm(d, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    }
    if (errors.length) throw new AggregateError(errors, "cleanup failed");
  }
}

async function anyMountUnder(dir: string): Promise<boolean> {
  return (await readMountInfo()).some((m) => m.mountpoint === dir || m.mountpoint.startsWith(`${dir}/`));
}

const READ_MANY = `
const { readFile } = require("node:fs/promises");
const { createHash } = require("node:crypto");
const paths = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
Promise.all(paths.map((p) => readFile(p).then(
  (b) => createHash("sha256").update(b).digest("hex"),
  (e) => "error:" + e.code,
))).then((out) => process.stdout.write(JSON.stringify(out)));
`;

/**
 * sha256 (hex) of each of `paths`, all read at once with fs.promises.readFile
 * by a child Node process with `threads` libuv threads ("error:CODE" for a
 * failed read). Readers run in another process, as containers do: this
 * process's thread pool may be needed to answer them.
 */
export function readInChild(paths: readonly string[], threads = 64): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(process.execPath, ["-e", READ_MANY], {
      env: { ...process.env, UV_THREADPOOL_SIZE: String(threads) }, maxBuffer: 64 << 20,
    }, (err, stdout) => (err ? reject(err) : resolvePromise(JSON.parse(stdout) as string[])));
    child.stdin!.end(JSON.stringify(paths));
  });
}
