import { InvalidArgumentError, ShoalError } from "@shoal/base";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { StartupOrder } from "@shoal/blockindex";
import type { PrefetchJob, PrefetchProgress, RemoteLayer } from "@shoal/fetch";
import type { Logger } from "pino";
import { isMountpoint, mountOverlay, unmountPath } from "../fs/index.ts";
import type { ActiveImages } from "./active-images.ts";
import type { CatalogImage, ImageCatalog } from "./image-catalog.ts";
import type { KeyValue } from "./kv.ts";

/** A mount as persisted (and restored after a restart). */
export interface MountRecord {
  mountpoint: string;
  image: string;
  digest: string;
  mountedAt: string;
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

  constructor(components: { catalog: ImageCatalog; images: ActiveImages; db: KeyValue; logger: Logger }) {
    this.catalog = components.catalog;
    this.images = components.images;
    this.db = components.db;
    this.logger = components.logger.child({ component: "mounts" });
  }

  /** Mount `image` read-only at `mountpoint` (an existing, empty-or-not, unmounted directory). */
  async mount(image: string, mountpointArg: string, opts: { signal?: AbortSignal } = {}): Promise<MountResult> {
    const started = performance.now();
    const mountpoint = resolve(mountpointArg);
    await this.checkMountpoint(mountpoint);
    const img = await this.catalog.load(image, opts);
    await this.attach(img, mountpoint);
    const record: MountRecord = { mountpoint, image: img.ref.toString(), digest: img.digest, mountedAt: new Date().toISOString() };
    this.mounts.set(mountpoint, record);
    await this.db.put(`mount!${mountpoint}`, JSON.stringify(record));
    const pullMs = performance.now() - started;
    this.logger.info({ image: record.image, digest: img.digest, mountpoint, pullMs: Math.round(pullMs), bytesFetched: img.bytesFetched }, "image mounted");
    this.onChange?.();
    return { mountpoint, digest: img.digest, layers: img.layers.length, pullMs, bytesFetched: img.bytesFetched };
  }

  /** Unmount `mountpoint`. A busy mount is an error and stays mounted. */
  async unmount(mountpointArg: string): Promise<void> {
    const mountpoint = resolve(mountpointArg);
    const record = this.mounts.get(mountpoint);
    if (!record) throw new MountError("SHOAL_ERR_NOT_MOUNTED", `${mountpoint} is not a shoal mount`);
    try {
      await unmountPath(mountpoint);
    } catch (err) {
      throw new MountError("SHOAL_ERR_BUSY", `cannot unmount ${mountpoint}: ${(err as Error).message}`, { cause: err });
    }
    this.mounts.delete(mountpoint);
    await this.db.del(`mount!${mountpoint}`);
    this.detach(record.digest, mountpoint);
    this.logger.info({ mountpoint }, "image unmounted");
    this.onChange?.();
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
        const img = await this.catalog.load(`${record.image.replace(/@sha256:[0-9a-f]{64}$/, "")}@${record.digest}`, { offline: true });
        await this.images.use(img, `mount:${record.mountpoint}`);
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
  status(): { mounts: MountRecord[]; images: Array<{ image: string; digest: string; layers: number; prefetch?: PrefetchProgress }> } {
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

  private async checkMountpoint(mountpoint: string): Promise<void> {
    let st;
    try {
      st = await stat(mountpoint);
    } catch {
      throw new MountError("SHOAL_ERR_NO_MOUNTPOINT", `mountpoint ${mountpoint} does not exist`);
    }
    if (!st.isDirectory()) throw new MountError("SHOAL_ERR_NO_MOUNTPOINT", `mountpoint ${mountpoint} is not a directory`);
    if (this.mounts.has(mountpoint) || (await isMountpoint(mountpoint))) throw new MountError("SHOAL_ERR_ALREADY_MOUNTED", `${mountpoint} is already a mountpoint`);
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
    const record = this.mounts.get(resolve(mountpointArg));
    if (!record) throw new MountError("SHOAL_ERR_NOT_MOUNTED", `${resolve(mountpointArg)} is not a shoal mount`);
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
export function parseMountRequest(body: unknown): { image: string; mountpoint: string } {
  const b = body as { image?: unknown; mountpoint?: unknown } | null;
  if (!b || typeof b.image !== "string" || typeof b.mountpoint !== "string" || !b.image || !b.mountpoint) {
    throw new InvalidArgumentError("mount request needs string fields image and mountpoint");
  }
  return { image: b.image, mountpoint: b.mountpoint };
}
