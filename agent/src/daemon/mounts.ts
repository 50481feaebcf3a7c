import { InvalidArgumentError, ShoalError } from "@shoal/base";
import { readdir, realpath, stat } from "node:fs/promises";
import type { StartupOrder } from "@shoal/blockindex";
import type { PrefetchJob, RemoteLayer } from "@shoal/fetch";
import type { Logger } from "pino";
import { isMountpoint, mountOverlay, unmountPath } from "../fs/index.ts";
import type { ActiveImages, ImageStatus } from "./active-images.ts";
import type { CatalogImage, ImageCatalog } from "./image-catalog.ts";
import type { KeyValue } from "./kv.ts";
import { checkMountpointPolicy, checkMountpointSyntax } from "./mountpoint-policy.ts";

/** A mount as persisted (and restored after a restart). */
export interface MountRecord {
  mountpoint: string;
  image: string;
  digest: string;
  mountedAt: string;
  /** The directory under the mount (device and inode) and whether it was empty, so a restart covers only that same directory. */
  dir?: { dev: number; ino: number; empty: boolean };
}

/** What `mount` reports. */
export interface MountResult {
  mountpoint: string;
  digest: string;
  layers: number;
  pullMs: number;
  bytesFetched: number;
}

/** Errors about mountpoints (missing, busy, already mounted). */
export class MountError extends ShoalError {}

/**
 * `shoal mount`: an image's layer directories (from `ActiveImages`, shared
 * with the snapshotter) stacked by a read-only kernel overlayfs at the
 * mountpoint; mounts are persisted so a restarted agent restores them
 * without the network.
 */
export class MountManager {
  private readonly catalog: ImageCatalog;
  private readonly images: ActiveImages;
  private readonly db: KeyValue;
  private readonly logger: Logger;
  private readonly mounts = new Map<string, MountRecord>();
  /** Mounts whose layers are restored and whose overlays are not yet. */
  private readonly restoring = new Map<string, CatalogImage>();
  /** Called after the set of mounted images changed (the agent re-announces its layers). */
  onChange: (() => void) | undefined;

  private readonly root: string;
  /** Mountpoints being mounted now (checked, not yet recorded). */
  private readonly pending = new Set<string>();

  constructor(components: { catalog: ImageCatalog; images: ActiveImages; db: KeyValue; logger: Logger }, init: { root: string }) {
    this.root = init.root;
    this.catalog = components.catalog;
    this.images = components.images;
    this.db = components.db;
    this.logger = components.logger.child({ component: "mounts" });
  }

  /**
   * Mount `image` read-only at `mountpointArg`: an absolute, clean path to an
   * existing directory that is not a mountpoint, not a system directory, not
   * the agent's root and not inside or above a shoal mount; empty, unless
   * `force` (then the image covers what is there until it is unmounted).
   */
  async mount(image: string, mountpointArg: string, opts: { force?: boolean; signal?: AbortSignal } = {}): Promise<MountResult> {
    const t0 = performance.now();
    const { mountpoint, dir } = await this.checkMountpoint(mountpointArg, opts.force ?? false);
    this.pending.add(mountpoint);
    let record: MountRecord;
    let img: CatalogImage;
    let loadMs: number;
    try {
      img = await this.catalog.load(image, { seekable: true, ...(opts.signal ? { signal: opts.signal } : {}) });
      loadMs = performance.now() - t0;
      await this.attach(img, mountpoint);
      record = { mountpoint, image: img.ref.toString(), digest: img.digest, mountedAt: new Date().toISOString(), dir };
      this.mounts.set(mountpoint, record);
    } finally {
      this.pending.delete(mountpoint);
    }
    await this.db.put(`mount!${mountpoint}`, JSON.stringify(record));
    const pullMs = performance.now() - t0;
    // loadMs: manifest and indexes (the catalog); the rest: layer directories, the overlay, the record
    this.logger.info({ image: record.image, digest: img.digest, mountpoint, pullMs: Math.round(pullMs), loadMs: Math.round(loadMs), bytesFetched: img.bytesFetched }, "image mounted");
    this.onChange?.();
    return { mountpoint, digest: img.digest, layers: img.layers.length, pullMs, bytesFetched: img.bytesFetched };
  }

  /**
   * Unmount `mountpointArg`. A busy mount is an error and stays mounted; a
   * record whose mount is already gone (unmounted from outside) is removed.
   */
  async unmount(mountpointArg: string): Promise<void> {
    const mountpoint = await this.recordedMountpoint(mountpointArg);
    const record = this.mounts.get(mountpoint)!;
    if (await isMountpoint(mountpoint)) {
      try {
        await unmountPath(mountpoint);
      } catch (err) {
        throw new MountError("SHOAL_ERR_BUSY", `cannot unmount ${mountpoint}: ${(err as Error).message}`, { cause: err });
      }
    } else {
      this.logger.warn({ mountpoint }, "the mount was already gone (unmounted from outside shoal); removing its record");
    }
    this.mounts.delete(mountpoint);
    await this.db.del(`mount!${mountpoint}`);
    this.detach(record.digest, mountpoint);
    this.logger.info({ mountpoint }, "image unmounted");
    this.onChange?.();
  }

  /** The recorded mountpoint `arg` names (as given, or with symlinks resolved), or SHOAL_ERR_NOT_MOUNTED. */
  private async recordedMountpoint(arg: string): Promise<string> {
    const clean = checkMountpointSyntax(arg);
    if (this.mounts.has(clean)) return clean;
    const real = await realpath(clean).catch(() => clean);
    if (this.mounts.has(real)) return real;
    throw new MountError("SHOAL_ERR_NOT_MOUNTED", `${clean} is not a shoal mount`);
  }

  /**
   * First half of a restart: the layers of every mount persisted by an
   * earlier run, back in the FUSE session, from local metadata only. Makes no
   * FUSE request, so it runs before the session serves.
   */
  async restoreLayers(): Promise<void> {
    for (const [, text] of await this.db.entries("mount!")) {
      const record = JSON.parse(text) as MountRecord;
      try {
        const img = await this.catalog.load(`${record.image.replace(/@sha256:[0-9a-f]{64}$/, "")}@${record.digest}`, { offline: true, seekable: true });
        await this.images.use(img, `mount:${record.mountpoint}`, undefined, { wait: false });
        this.mounts.set(record.mountpoint, record);
        this.restoring.set(record.mountpoint, img);
      } catch (err) {
        this.logger.error({ mountpoint: record.mountpoint, err: (err as Error).message }, "could not restore mount");
      }
    }
  }

  /**
   * Second half, once the FUSE session serves: an overlay for each restored
   * mount. With `keepLive` (the FUSE connection outlived the last agent) an
   * overlay still mounted there is kept as it is, open files and all;
   * otherwise a stale one is cleared and mounted again.
   */
  async restoreOverlays(keepLive: boolean): Promise<void> {
    for (const [mountpoint, img] of this.restoring) {
      this.restoring.delete(mountpoint);
      try {
        const live = await isMountpoint(mountpoint);
        if (live && keepLive) {
          this.logger.info({ mountpoint, image: img.ref.toString() }, "mount kept across the restart");
          continue;
        }
        if (live) await unmountPath(mountpoint, { lazy: true });
        const changed = await this.dirChanged(mountpoint);
        if (changed) {
          this.mounts.delete(mountpoint);
          this.images.release(img.digest, `mount:${mountpoint}`);
          await this.db.del(`mount!${mountpoint}`);
          this.logger.error({ mountpoint, image: img.ref.toString(), why: changed }, "mount not restored: its directory is not the one it covered; record removed");
          continue;
        }
        await mountOverlay({ lowerdirs: [...((await this.images.use(img, `mount:${mountpoint}`)) as string[])].reverse(), target: mountpoint });
        this.logger.info({ mountpoint, image: img.ref.toString() }, "mount restored");
      } catch (err) {
        this.mounts.delete(mountpoint);
        this.images.release(img.digest, `mount:${mountpoint}`);
        this.logger.error({ mountpoint, err: (err as Error).message }, "could not restore mount");
      }
    }
  }

  /**
   * Stop background work; with `unmount`, unmount every overlay too (keeping
   * the records, so a restart restores them). Without it the overlays stay,
   * on a FUSE connection that outlives this process.
   */
  async shutdown(unmount: boolean): Promise<void> {
    this.images.stop();
    if (!unmount) return;
    for (const m of this.mounts.keys()) {
      await unmountPath(m, { lazy: true }).catch((err: Error) => this.logger.warn({ mountpoint: m, err: err.message }, "unmount at shutdown failed"));
    }
  }

  /** Mount records and per-image prefetch progress (of every image in use, snapshots too). */
  status(): { mounts: MountRecord[]; images: ImageStatus[] } {
    return { mounts: [...this.mounts.values()], images: this.images.status() };
  }

  /** The lazy layers of every image in use, one per digest. */
  layers(): RemoteLayer[] {
    return this.images.layers();
  }

  /** The prefetch job of image `digest`, if any (tests wait on `done`). */
  prefetchJob(digest: string): PrefetchJob | undefined {
    return this.images.prefetchJob(digest);
  }

  /** The canonical mountpoint for `arg` and the directory it covers, or why shoal refuses it. */
  private async checkMountpoint(arg: string, force: boolean): Promise<{ mountpoint: string; dir: NonNullable<MountRecord["dir"]> }> {
    const clean = checkMountpointSyntax(arg);
    let mountpoint: string;
    let st;
    try {
      mountpoint = await realpath(clean);
      st = await stat(mountpoint);
    } catch {
      throw new MountError("SHOAL_ERR_NO_MOUNTPOINT", `mountpoint ${clean} does not exist`);
    }
    if (!st.isDirectory()) throw new MountError("SHOAL_ERR_NO_MOUNTPOINT", `mountpoint ${clean} is not a directory`);
    const taken = () => new MountError("SHOAL_ERR_ALREADY_MOUNTED", `${mountpoint} is already a mountpoint`);
    if (this.mounts.has(mountpoint) || this.pending.has(mountpoint)) throw taken();
    checkMountpointPolicy(mountpoint, { root: await realpath(this.root), mounted: [...this.mounts.keys(), ...this.pending] });
    if (await isMountpoint(mountpoint)) throw taken();
    const entries = (await readdir(mountpoint)).length;
    if (entries > 0 && !force) {
      throw new MountError("SHOAL_ERR_MOUNTPOINT_NOT_EMPTY", `${mountpoint} is not empty (${entries} entries); the image would hide them: use --force to cover them anyway`);
    }
    return { mountpoint, dir: { dev: st.dev, ino: st.ino, empty: entries === 0 } };
  }

  /** Why the directory at `mountpoint` is not the one its record covered (gone, replaced, filled), or undefined. */
  private async dirChanged(mountpoint: string): Promise<string | undefined> {
    const want = this.mounts.get(mountpoint)?.dir;
    if (!want) return undefined; // a record of an older agent: nothing to compare
    const st = await stat(mountpoint).catch(() => undefined);
    if (!st?.isDirectory()) return "the directory is gone";
    if (st.dev !== want.dev || st.ino !== want.ino) return "another directory is there now";
    if (want.empty && (await readdir(mountpoint)).length > 0) return "the directory was empty and is not any more";
    return undefined;
  }

  private async attach(img: CatalogImage, mountpoint: string): Promise<void> {
    const dirs = (await this.images.use(img, `mount:${mountpoint}`)) as string[];
    try {
      await mountOverlay({ lowerdirs: [...dirs].reverse(), target: mountpoint });
    } catch (err) {
      this.images.release(img.digest, `mount:${mountpoint}`);
      throw new MountError("SHOAL_ERR_MOUNT_FAILED", `cannot mount ${img.ref.toString()} at ${mountpoint}: ${(err as Error).message}`, { cause: err });
    }
  }

  private detach(digest: string, mountpoint: string): void {
    this.images.release(digest, `mount:${mountpoint}`);
  }

  /**
   * The startup order recorded for the image mounted at `mountpoint`, keyed
   * by source layer digest, for `shoal convert --startup-order`.
   */
  async exportStartupOrder(mountpointArg: string): Promise<StartupOrder> {
    const record = this.mounts.get(await this.recordedMountpoint(mountpointArg))!;
    const img = this.images.image(record.digest)!;
    const order = await this.images.startupOrder(record.digest);
    if (order.length === 0) throw new MountError("SHOAL_ERR_NOT_FOUND", `no startup order recorded yet for ${record.image}: read from the mount, then wait for the startup window to pass`);
    const sizes = new Set(img.layers.map((l) => l.index.chunkSize));
    if (sizes.size !== 1) throw new MountError("SHOAL_ERR_UNSUPPORTED", `the layers of ${record.image} use different chunk sizes`);
    const layers: Record<string, number[]> = {};
    for (const [li, c] of order) {
      const source = img.layers[li]?.sourceDigest;
      if (source) (layers[source] ??= []).push(c);
    }
    return { version: 1, chunkSize: [...sizes][0]!, layers };
  }
}

/** Validate a mount request's fields. */
export function parseMountRequest(body: unknown): { image: string; mountpoint: string; force: boolean } {
  const b = body as { image?: unknown; mountpoint?: unknown; force?: unknown } | null;
  if (!b || typeof b.image !== "string" || typeof b.mountpoint !== "string" || !b.image || !b.mountpoint) {
    throw new InvalidArgumentError("mount request needs string fields image and mountpoint");
  }
  if (b.force !== undefined && typeof b.force !== "boolean") throw new InvalidArgumentError("mount request field force must be a boolean");
  return { image: b.image, mountpoint: b.mountpoint, force: b.force === true };
}
