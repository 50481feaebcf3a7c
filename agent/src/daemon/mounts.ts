import { InvalidArgumentError, ShoalError } from "@shoal/base";
import { createHash } from "node:crypto";
import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { MergedTree, type StartupOrder } from "@shoal/blockindex";
import { PrefetchJob, type ChunkPos, type Fetcher, type PrefetchProgress, type RemoteLayer } from "@shoal/fetch";
import type { Logger } from "pino";
import type { LayerFilesystem, LowerFile } from "../fs/index.ts";
import { isMountpoint, mountOverlay, unmountPath } from "../fs/index.ts";
import type { CatalogImage, ImageCatalog } from "./image-catalog.ts";
import type { KeyValue } from "./kv.ts";

/** The part of the chunk store mounts need: pinning chunks of mounted images. */
export interface ChunkPinning {
  pin(owner: string, digests: Iterable<string>): void;
  unpin(owner: string): void;
}

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

/** Settings of the mount manager. */
export interface MountManagerInit {
  layersDir: string;
  prefetch: boolean;
  prefetchRate: number;
  startupWindowMs: number;
}

interface ActiveImage {
  image: CatalogImage;
  layerIds: string[];
  job?: PrefetchJob;
  mounts: Set<string>;
}

/**
 * Mounts lazy images: per-layer directories in the one FUSE session,
 * stacked by a read-only kernel overlayfs at the mountpoint; pins the
 * image's chunks, streams the image in (recorded startup chunks first),
 * records the startup order of the first seconds, and persists mounts so a
 * restarted agent restores them without the network.
 */
export class MountManager {
  private readonly catalog: ImageCatalog;
  private readonly fs: LayerFilesystem;
  private readonly fetcher: Fetcher;
  private readonly store: ChunkPinning;
  private readonly db: KeyValue;
  private readonly logger: Logger;
  private readonly init: MountManagerInit;
  private readonly images = new Map<string, ActiveImage>();
  private readonly mounts = new Map<string, MountRecord>();
  private readonly layerUsers = new Map<string, number>();
  /** Called after the set of mounted images changed (the agent re-announces its layers). */
  onChange: (() => void) | undefined;
  /** Recorders of startup reads: layer id → callbacks. */
  private readonly recorders = new Map<string, Set<(layerId: string, chunk: number) => void>>();

  /** True while the host serves its swarm (prefetch jobs put their idle-time work off meanwhile). */
  private readonly sharing: (() => boolean) | undefined;

  constructor(components: { catalog: ImageCatalog; fs: LayerFilesystem; fetcher: Fetcher; store: ChunkPinning; db: KeyValue; logger: Logger; sharing?: () => boolean }, init: MountManagerInit) {
    this.sharing = components.sharing;
    this.catalog = components.catalog;
    this.fs = components.fs;
    this.fetcher = components.fetcher;
    this.store = components.store;
    this.db = components.db;
    this.logger = components.logger.child({ component: "mounts" });
    this.init = init;
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

  /** Re-establish the mounts persisted by an earlier run (stale mounts at the mountpoints are cleared first). */
  async restore(): Promise<void> {
    for (const [, text] of await this.db.entries("mount!")) {
      const record = JSON.parse(text) as MountRecord;
      try {
        if (await isMountpoint(record.mountpoint)) await unmountPath(record.mountpoint, { lazy: true });
        const img = await this.catalog.load(`${record.image.replace(/@sha256:[0-9a-f]{64}$/, "")}@${record.digest}`, { offline: true });
        await this.attach(img, record.mountpoint);
        this.mounts.set(record.mountpoint, record);
        this.logger.info({ mountpoint: record.mountpoint, image: record.image }, "mount restored");
      } catch (err) {
        this.logger.error({ mountpoint: record.mountpoint, err: (err as Error).message }, "could not restore mount");
      }
    }
  }

  /** Unmount every overlay (keeping the records, so a restart restores them). */
  async shutdown(): Promise<void> {
    for (const a of this.images.values()) a.job?.stop();
    for (const m of this.mounts.keys()) {
      await unmountPath(m, { lazy: true }).catch((err: Error) => this.logger.warn({ mountpoint: m, err: err.message }, "unmount at shutdown failed"));
    }
  }

  /** Mount records and per-image prefetch progress. */
  status(): { mounts: MountRecord[]; images: Array<{ image: string; digest: string; layers: number; prefetch?: PrefetchProgress }> } {
    return {
      mounts: [...this.mounts.values()],
      images: [...this.images.entries()].map(([digest, a]) => ({
        image: a.image.ref.toString(),
        digest,
        layers: a.image.layers.length,
        ...(a.job ? { prefetch: a.job.progress() } : {}),
      })),
    };
  }

  /** The lazy layers of every mounted image, one per digest. */
  layers(): RemoteLayer[] {
    const byDigest = new Map<string, RemoteLayer>();
    for (const a of this.images.values()) for (const l of a.image.layers) if (!byDigest.has(l.digest)) byDigest.set(l.digest, l);
    return [...byDigest.values()];
  }

  /** The prefetch job of image `digest`, if any (tests wait on `done`). */
  prefetchJob(digest: string): PrefetchJob | undefined {
    return this.images.get(digest)?.job;
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
    const ids = chainIds(img.layers);
    ids.forEach((_, i) => this.addLayer(ids, img.layers, i));
    try {
      await mountOverlay({ lowerdirs: ids.map((id) => join(this.init.layersDir, id)).reverse(), target: mountpoint });
    } catch (err) {
      ids.forEach((id) => this.releaseLayer(id));
      throw new MountError("SHOAL_ERR_MOUNT_FAILED", `cannot mount ${img.ref.toString()} at ${mountpoint}: ${(err as Error).message}`, { cause: err });
    }
    let active = this.images.get(img.digest);
    if (!active) {
      active = { image: img, layerIds: ids, mounts: new Set() };
      this.images.set(img.digest, active);
      this.store.pin(img.digest, img.layers.flatMap((l) => Array.from({ length: l.index.chunkCount }, (_, c) => `sha256:${l.index.chunk(c).digest.toString("hex")}`)));
      let first = await this.startupOrder(img.digest);
      // No local record: use the startup order the image carries in its indexes, if any.
      if (first.length === 0) first = img.layers.flatMap((l, li) => l.index.prefetch.map((c): ChunkPos => [li, c]));
      this.record(img, ids);
      if (this.init.prefetch) {
        active.job = new PrefetchJob({ fetcher: this.fetcher, logger: this.logger, ...(this.sharing ? { busy: this.sharing } : {}) }, { layers: img.layers, first, rateBytesPerSec: this.init.prefetchRate });
      }
    }
    active.mounts.add(mountpoint);
  }

  private detach(digest: string, mountpoint: string): void {
    const active = this.images.get(digest);
    if (!active) return;
    active.mounts.delete(mountpoint);
    if (active.mounts.size > 0) return;
    active.job?.stop();
    this.store.unpin(digest);
    active.layerIds.forEach((id) => this.releaseLayer(id));
    this.images.delete(digest);
  }

  /** Add layer `i` (directory `ids[i]`) unless the filesystem has it; `ids` are the image's chain ids. */
  private addLayer(ids: string[], layers: RemoteLayer[], i: number): void {
    const id = ids[i]!;
    this.layerUsers.set(id, (this.layerUsers.get(id) ?? 0) + 1);
    if (this.fs.has(id)) return;
    const layer = layers[i]!;
    let lower: MergedTree | undefined;
    const dataOf = (l: RemoteLayer, lid: string) => ({
      read: (offset: number, length: number, opts?: { signal?: AbortSignal }) => {
        const rec = this.recorders.get(lid);
        if (rec) {
          const range = l.index.chunksForRange(offset, length);
          if (range) for (let c = range.first; c <= range.last; c++) for (const f of rec) f(lid, c);
        }
        return this.fetcher.read(l, offset, length, opts);
      },
    });
    this.fs.addLayer({
      id,
      index: layer.index,
      data: dataOf(layer, id),
      resolveLower: (path: string): LowerFile | undefined => {
        lower ??= MergedTree.build(layers.slice(0, i).map((l) => l.index));
        const node = lower.lookup(path);
        if (!node) return undefined;
        const li = node.inode.layer;
        return { entry: node.inode.entry, data: dataOf(layers[li]!, ids[li]!), layerId: ids[li]! };
      },
    });
  }

  private releaseLayer(id: string): void {
    const n = (this.layerUsers.get(id) ?? 1) - 1;
    if (n > 0) {
      this.layerUsers.set(id, n);
      return;
    }
    this.layerUsers.delete(id);
    this.fs.removeLayer(id);
  }

  /**
   * The startup order recorded for the image mounted at `mountpoint`, keyed
   * by source layer digest, for `shoal convert --startup-order`.
   */
  async exportStartupOrder(mountpointArg: string): Promise<StartupOrder> {
    const record = this.mounts.get(resolve(mountpointArg));
    if (!record) throw new MountError("SHOAL_ERR_NOT_MOUNTED", `${resolve(mountpointArg)} is not a shoal mount`);
    const img = this.images.get(record.digest)!.image;
    const order = await this.startupOrder(record.digest);
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

  private async startupOrder(digest: string): Promise<ChunkPos[]> {
    const text = await this.db.get(`startup!${digest}`);
    if (!text) return [];
    try {
      return JSON.parse(text) as ChunkPos[];
    } catch {
      return [];
    }
  }

  /** Record the chunks read in the first `startupWindowMs` after mounting `img`; save them as its startup order. */
  private record(img: CatalogImage, ids: string[]): void {
    const seen = new Set<string>();
    const order: ChunkPos[] = [];
    const onRead = (layerId: string, chunk: number) => {
      const li = ids.indexOf(layerId);
      const key = `${li}:${chunk}`;
      if (li < 0 || seen.has(key)) return;
      seen.add(key);
      order.push([li, chunk]);
    };
    for (const id of ids) {
      let set = this.recorders.get(id);
      if (!set) this.recorders.set(id, (set = new Set()));
      set.add(onRead);
    }
    const timer = setTimeout(() => {
      for (const id of ids) {
        const set = this.recorders.get(id);
        set?.delete(onRead);
        if (set && set.size === 0) this.recorders.delete(id);
      }
      if (order.length > 0) {
        this.db.put(`startup!${img.digest}`, JSON.stringify(order)).catch((err: Error) => this.logger.warn({ err: err.message }, "could not save startup order"));
        this.logger.info({ digest: img.digest, chunks: order.length }, "startup order recorded");
      }
    }, this.init.startupWindowMs);
    timer.unref();
  }
}

/** Snapshot ids: a chain over the lazy layer digests (a layer's directory depends on the layers below it). */
export function chainIds(layers: RemoteLayer[]): string[] {
  const ids: string[] = [];
  let prev = "";
  for (const l of layers) {
    prev = createHash("sha256").update(`${prev} ${l.digest}`).digest("hex").slice(0, 32);
    ids.push(prev);
  }
  return ids;
}

/** Validate a mount request's fields. */
export function parseMountRequest(body: unknown): { image: string; mountpoint: string } {
  const b = body as { image?: unknown; mountpoint?: unknown } | null;
  if (!b || typeof b.image !== "string" || typeof b.mountpoint !== "string" || !b.image || !b.mountpoint) {
    throw new InvalidArgumentError("mount request needs string fields image and mountpoint");
  }
  return { image: b.image, mountpoint: b.mountpoint };
}
