/**
 * Block mode: each layer a kernel erofs filesystem. The layer's metadata
 * image (inodes, directories, symlinks, xattrs; built from its tree, written
 * to `imageDir`) is mounted with `mount(2)` straight from the file, its data
 * device the layer's uncompressed tar stream as the layer filesystem serves
 * it (`#<id>` beside the layer directories). Lookups, stats, xattrs and
 * directory reads are the kernel's from then on; the agent sees only reads
 * of the stream, each mapped back to its file (`LayerTree.filesIn`).
 *
 * A layer that cannot be mounted so (the kernel lacks erofs file-backed
 * mounts, or a hardlink's data lies in a layer on the other FUSE
 * connection) is served per file, as before, and the reason is logged.
 */
import { ShoalError } from "@shoal/base";
import { writeErofsImage, type ErofsNode } from "@shoal/erofs";
import { mkdir, open, rename, rmdir, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import type { LayerDirectories } from "../fs/layer-connections.ts";
import type { LayerSnapshot } from "../fs/layer-data.ts";
import type { FsNode, LayerTree } from "../fs/layer-tree.ts";
import { findMount } from "../fs/mount.ts";
import { KernelMountError, MS_RDONLY, type KernelMounter } from "./kernel-mount.ts";

/** The per-file layer directories block mode builds on: trees and stream files by layer id. */
export interface StreamedLayers extends LayerDirectories {
  /** The file that is served layer `id`'s uncompressed tar stream. */
  streamPath(id: string): string;
  /** The tree of served layer `id`. */
  tree(id: string): LayerTree | undefined;
}

/** Settings of {@link BlockLayers}. */
export interface BlockLayersInit {
  /**
   * Where each layer's erofs image is written just before its mount, which
   * then holds it (the file is unlinked at once): a ramfs mounted there.
   */
  imageDir: string;
  /** Where each layer's erofs filesystem is mounted (`<id>/`). */
  mountDir: string;
  /** Where the streams of wholly local layers are kept as files (`<id>`), read by their next mounts without the agent. */
  streamDir: string;
}

/** Bytes copied at a time into a local stream. */
const COPY_BYTES = 4 << 20;

/** The erofs image of one layer's tree and the layers whose streams it reads, in device order (device 1: its own). */
export function layerImage(id: string, tree: LayerTree, streams: StreamedLayers): { bytes: Buffer; layers: string[] } | { refused: string } {
  const devices = [id];
  for (const node of filesOf(tree.root)) {
    if (!node.data || node.size === 0 || node.data === tree.stream.data) continue;
    // a hardlink into a lower layer shares that layer's node, and its bytes are in that layer's stream
    if (streams.tree(node.layer)?.stream.data !== node.data) return { refused: `${node.path} is a copy of a file of a layer below it` };
    if (!devices.includes(node.layer)) devices.push(node.layer);
  }
  const sizes = devices.map((d) => ({ size: streams.tree(d)!.stream.size }));
  const image = writeErofsImage({
    root: tree.root as ErofsNode,
    devices: sizes,
    deviceOf: (n) => devices.indexOf((n as FsNode).data === tree.stream.data ? id : (n as FsNode).layer) + 1,
  });
  return { bytes: image.bytes, layers: devices };
}

/** Every file node reachable from `root` (a layer's own and those shared from layers below). */
function* filesOf(root: FsNode): Generator<FsNode> {
  const stack = [root];
  while (stack.length) {
    const dir = stack.pop()!;
    for (const child of dir.children!.values()) {
      if (child.children) stack.push(child);
      else yield child;
    }
  }
}

/**
 * Layer directories in block mode over per-file ones (`inner`): the
 * directory of a layer is its erofs mount once `ready(id)` resolves.
 * Removing a layer unmounts its erofs filesystem, then takes its stream away.
 */
export class BlockLayers implements LayerDirectories {
  private readonly inner: StreamedLayers;
  private readonly mounter: KernelMounter;
  private readonly log: Logger;
  private readonly init: BlockLayersInit;
  private readonly pending = new Map<string, Promise<void>>();
  private readonly mounted = new Map<string, string>();
  private readonly removing = new Map<string, Promise<void>>();
  /** Layers whose mount reads local stream files only (no FUSE request). */
  private readonly local = new Set<string>();
  /** Local streams being written, one at a time. */
  private copying: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private nextImage = 0;
  private imageDirReady: Promise<string> | undefined;
  /** Set once the kernel refused erofs file-backed mounts: every layer is served per file from then on. */
  private unsupported: ShoalError | undefined;

  constructor(components: { inner: StreamedLayers; mounter: KernelMounter; logger: Logger }, init: BlockLayersInit) {
    this.inner = components.inner;
    this.mounter = components.mounter;
    this.log = components.logger.child({ component: "block" });
    this.init = init;
  }

  /** Prepare where images are written (the ramfs), so that the first mount does not wait for it. */
  async start(): Promise<void> {
    await this.imageDir();
  }

  /** How many layers are mounted in block mode now. */
  get blockLayerCount(): number {
    return this.mounted.size;
  }

  /** How many of those read only local files (their streams were wholly local when they were mounted). */
  get localLayerCount(): number {
    return this.local.size;
  }

  /** The local stream file of layer `id`, when it is there whole (`size` bytes, the layer's stream). */
  private async localStream(id: string, size: number): Promise<string | undefined> {
    const path = join(this.init.streamDir, id);
    return (await stat(path).catch(() => undefined))?.size === size ? path : undefined;
  }

  whollyLocal(id: string, read: (offset: number, length: number) => Promise<Buffer>): void {
    const tree = this.inner.tree(id);
    if (!tree || this.queued.has(id)) return;
    this.queued.add(id);
    const size = tree.stream.size;
    this.copying = this.copying.then(async () => {
      if (await this.localStream(id, size)) return;
      const path = join(this.init.streamDir, id);
      await mkdir(this.init.streamDir, { recursive: true });
      const temp = `${path}.tmp-${process.pid}`;
      const fh = await open(temp, "w");
      try {
        for (let at = 0; at < size; at += COPY_BYTES) {
          const buf = await read(at, Math.min(COPY_BYTES, size - at));
          await fh.write(buf, 0, buf.length, at);
        }
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(temp, path);
      this.log.info({ layer: id, bytes: size }, "layer stream kept as a local file: its next mounts read no FUSE");
    }).catch((err: unknown) => {
      this.queued.delete(id);
      this.log.warn({ layer: id, err: (err as Error).message }, "could not keep the layer's stream as a local file");
    });
  }

  /** The data device of layer `id`: its local stream file when complete, else its FUSE stream. */
  private async device(id: string): Promise<{ path: string; local: boolean }> {
    const size = this.inner.tree(id)?.stream.size;
    const local = size === undefined ? undefined : await this.localStream(id, size);
    return local ? { path: local, local: true } : { path: this.inner.streamPath(id), local: false };
  }

  has(id: string): boolean {
    return this.inner.has(id) && !this.removing.has(id);
  }

  addLayer(snapshot: LayerSnapshot): void {
    const { id } = snapshot;
    const removal = this.removing.get(id);
    if (removal) this.removing.delete(id); // taken back before it went: its stream stays
    else this.inner.addLayer(snapshot);
    const p = (removal ?? Promise.resolve()).then(() => this.mountLayer(id));
    this.pending.set(id, p);
    p.catch(() => undefined).finally(() => {
      if (this.pending.get(id) === p) this.pending.delete(id);
    });
  }

  async ready(id: string): Promise<void> {
    await this.pending.get(id);
  }

  layerPath(id: string): string {
    return this.mounted.get(id) ?? this.inner.layerPath(id);
  }

  removeLayer(id: string): boolean {
    if (!this.has(id)) return false;
    const before = this.pending.get(id);
    const removal = (async () => {
      await before?.catch(() => undefined);
      const dir = this.mounted.get(id);
      this.mounted.delete(id);
      this.local.delete(id);
      if (dir) await this.unmountQuiet(dir);
    })();
    this.removing.set(id, removal);
    void removal.finally(() => {
      if (this.removing.get(id) !== removal) return;
      this.removing.delete(id);
      this.inner.removeLayer(id);
    });
    return true;
  }

  /** Unmount every erofs filesystem (before the FUSE connections go). */
  async unmountAll(): Promise<void> {
    await Promise.all([...this.pending.values()].map((p) => p.catch(() => undefined)));
    const dirs = [...this.mounted.values()];
    this.mounted.clear();
    await Promise.all(dirs.map((d) => this.unmountQuiet(d)));
    await Promise.all([...this.removing.values()]);
    // the images' ramfs (images of mounts still held elsewhere keep it alive, detached)
    if (this.imageDirReady && (await findMount(this.init.imageDir))?.fstype === "ramfs") {
      await this.mounter.unmount(this.init.imageDir, { lazy: true }).catch((err: Error) => this.log.warn({ err: err.message }, "unmounting the images' ramfs failed"));
      this.imageDirReady = undefined;
    }
  }

  private async mountLayer(id: string): Promise<void> {
    const tree = this.inner.tree(id);
    if (!tree || this.unsupported) return;
    const target = join(this.init.mountDir, id);
    // an earlier agent's mount, kept across its restart (its stream is served again now)
    if ((await findMount(target))?.fstype === "erofs") {
      this.mounted.set(id, target);
      return;
    }
    const t0 = performance.now();
    const built = layerImage(id, tree, this.inner);
    const t1 = performance.now();
    if ("refused" in built) {
      this.log.warn({ layer: id, reason: built.refused }, "layer served per file, not in block mode");
      return;
    }
    // the image lives only as long as its mount: written, mounted, unlinked (the mount holds it)
    const image = join(await this.imageDir(), `${id}.${process.pid}.${this.nextImage++}.erofs`);
    await writeFile(image, built.bytes, { mode: 0o600 });
    await mkdir(target, { recursive: true });
    const devices = await Promise.all(built.layers.map((l) => this.device(l)));
    const t2 = performance.now();
    try {
      await this.mounter.mount(image, target, "erofs", MS_RDONLY, devices.map((d) => `device=${d.path}`).join(","));
    } catch (err) {
      await unlink(image).catch(() => undefined);
      if (!(await this.kernelSupport())) {
        this.unsupported = new ShoalError("SHOAL_ERR_NO_BLOCK_MODE", `this kernel cannot mount erofs from a file (erofs with CONFIG_EROFS_FS_BACKED_BY_FILE, Linux 6.12+): ${(err as Error).message}; layers are served per file`);
        this.log.error({ code: this.unsupported.code }, this.unsupported.message);
      } else this.log.warn({ layer: id, err: (err as Error).message }, "mounting the layer in block mode failed; it is served per file");
      await rmdir(target).catch(() => undefined);
      return;
    }
    await unlink(image).catch(() => undefined);
    this.mounted.set(id, target);
    if (devices.every((d) => d.local)) this.local.add(id);
    const ms = (a: number, b: number) => Math.round(b - a);
    this.log.info({ layer: id, imageBytes: built.bytes.length, local: this.local.has(id), buildMs: ms(t0, t1), writeMs: ms(t1, t2), mountMs: ms(t2, performance.now()) }, "layer mounted in block mode");
  }

  /**
   * Where images are written: a ramfs the agent mounts at `imageDir` (the
   * metadata of mounted layers then stays in memory: erofs reads an image
   * file's pages one at a time, without read-ahead, once the page cache let
   * them go; tmpfs cannot back an erofs mount), else the directory itself.
   */
  private imageDir(): Promise<string> {
    this.imageDirReady ??= (async () => {
      const dir = this.init.imageDir;
      await mkdir(dir, { recursive: true });
      if ((await findMount(dir))?.fstype === "ramfs") return dir;
      try {
        await this.mounter.mount("shoal-erofs", dir, "ramfs", 0, "mode=700");
      } catch (err) {
        this.log.warn({ dir, err: (err as Error).message }, "no ramfs for block mode's images; they are written to disk");
      }
      return dir;
    })();
    return this.imageDirReady;
  }

  /** Whether this kernel mounts an erofs image from a regular file at all: a minimal image, mounted and unmounted. */
  private async kernelSupport(): Promise<boolean> {
    const dir = join(this.init.mountDir, `.probe-${process.pid}`);
    const image = `${dir}.erofs`;
    const device = `${dir}.dev`;
    const root = { mode: 0o040755, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, size: 0, rdev: 0, dataOffset: 0, children: new Map() };
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(image, writeErofsImage({ root, devices: [{ size: 512 }] }).bytes);
      await writeFile(device, Buffer.alloc(512));
      await this.mounter.mount(image, dir, "erofs", MS_RDONLY, `device=${device}`);
      await this.mounter.unmount(dir);
      return true;
    } catch {
      return false;
    } finally {
      await Promise.all([unlink(image), unlink(device)].map((p) => p.catch(() => undefined)));
      await rmdir(dir).catch(() => undefined);
    }
  }

  private async unmountQuiet(dir: string): Promise<void> {
    try {
      await this.mounter.unmount(dir);
    } catch (err) {
      if (!(err instanceof KernelMountError) || err.errno !== "EBUSY") {
        this.log.warn({ dir, err: (err as Error).message }, "unmounting a block-mode layer failed");
        return;
      }
      await this.mounter.unmount(dir, { lazy: true }).catch((e: Error) => this.log.warn({ dir, err: e.message }, "detaching a block-mode layer failed"));
    }
    await rmdir(dir).catch(() => undefined);
  }
}
