/**
 * The layer filesystem over two FUSE connections: layers with no xattr on
 * one that answers getxattr ENOSYS, so that the kernel stops asking it
 * (overlayfs asks one or two xattrs of every lower file it looks up, and
 * the kernel caches no answer but that one: a third of a container's first
 * requests), and the layers that have xattrs (opaque directories, file
 * capabilities) on one that serves them.
 */
import { InvalidArgumentError } from "@shoal/base";
import type { Logger } from "pino";
import { LayerFilesystem, LayerHasXattrsError, type FsCounters } from "./layer-fs.ts";
import type { FuseMounter } from "./fuse-transport.ts";
import type { LayerSnapshot } from "./layer-data.ts";
import type { LayerTree } from "./layer-tree.ts";

/** What the agent's images need of the layer filesystem: layer directories by id. */
export interface LayerDirectories {
  /** Whether layer `id` is served. */
  has(id: string): boolean;
  /** Serve `snapshot` (bottom layers first); its directory is `layerPath(snapshot.id)` from then on. */
  addLayer(snapshot: LayerSnapshot): void;
  /** Stop serving layer `id`; false when it was not there. */
  removeLayer(id: string): boolean;
  /** The directory of served layer `id`. */
  layerPath(id: string): string;
  /** Resolves once layer `id`'s directory can be stacked (block mode mounts it; the FUSE directories are there at once). */
  ready?(id: string): Promise<void>;
  /**
   * Every chunk of layer `id` is local now, readable through `read` (its
   * uncompressed stream): block mode copies the stream into a local file,
   * which the layer's next mounts read without the agent.
   */
  whollyLocal?(id: string, read: (offset: number, length: number) => Promise<Buffer>): void;
}

/** Settings of {@link LayerConnections}. */
export interface LayerConnectionsInit {
  /** Where layers with xattrs appear (`mountpoint/<id>`). */
  mountpoint: string;
  /** Where layers without xattrs appear. */
  plainMountpoint: string;
  /** Read-ahead of both mounts in KiB. */
  readAheadKb?: number;
}

/**
 * Layers by whether they carry xattrs, each on its own FUSE connection
 * (see the module comment). Which connection a layer is on follows from its
 * tree alone, so a restarted agent puts every layer back where it was;
 * a layer that a connection already held (an agent from before the split
 * adopted it) stays on it. A hardlink to a lower layer on the other
 * connection is a copy of that file (its own inode), as for a lower layer
 * outside the filesystem.
 */
export class LayerConnections implements LayerDirectories {
  /** The connection that serves xattrs. */
  readonly withXattrs: LayerFilesystem;
  /** The connection that answers getxattr ENOSYS. */
  readonly plain: LayerFilesystem;
  private readonly on = new Map<string, LayerFilesystem>();

  /** `mounter` gives both connections (default: mounted in this process). */
  constructor(components: { logger?: Logger; mounter?: FuseMounter }, init: LayerConnectionsInit) {
    const common = init.readAheadKb === undefined ? {} : { readAheadKb: init.readAheadKb };
    this.withXattrs = new LayerFilesystem(components, { mountpoint: init.mountpoint, ...common });
    this.plain = new LayerFilesystem(components, { mountpoint: init.plainMountpoint, xattrs: false, ...common });
  }

  /** Mount both (or attach to the connections the mounter holds); see `LayerFilesystem.mount`. */
  async mount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.withXattrs.mount(opts);
    await this.plain.mount(opts);
  }

  /** Unmount both. Idempotent. */
  async unmount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await Promise.all([this.plain.unmount(opts), this.withXattrs.unmount(opts)]);
  }

  /** Let go of both connections, leaving them mounted (see `LayerFilesystem.detach`). */
  async detach(): Promise<void> {
    await Promise.all([this.plain.detach(), this.withXattrs.detach()]);
  }

  /** Whether either connection outlived an earlier agent. */
  get adopted(): boolean {
    return this.withXattrs.adopted || this.plain.adopted;
  }

  /** How many layers are served. */
  get layerCount(): number {
    return this.withXattrs.layerCount + this.plain.layerCount;
  }

  /** Request counts of both connections, summed. */
  get counters(): FsCounters {
    const a = this.withXattrs.counters;
    const b = this.plain.counters;
    const sum = (x: Record<string, number>, y: Record<string, number>) => {
      const out = { ...x };
      for (const [k, v] of Object.entries(y)) out[k] = (out[k] ?? 0) + v;
      return out;
    };
    return { ops: sum(a.ops, b.ops), errors: sum(a.errors, b.errors), bytesRead: a.bytesRead + b.bytesRead };
  }

  has(id: string): boolean {
    return this.on.has(id);
  }

  addLayer(snapshot: LayerSnapshot): void {
    const { id } = snapshot;
    if (this.on.has(id)) throw new InvalidArgumentError(`layer ${id} is already in the filesystem`);
    if (!this.withXattrs.hadLayer(id)) {
      try {
        this.plain.addLayer(snapshot);
        this.on.set(id, this.plain);
        return;
      } catch (err) {
        if (!(err instanceof LayerHasXattrsError)) throw err;
      }
    }
    this.withXattrs.addLayer(snapshot);
    this.on.set(id, this.withXattrs);
  }

  removeLayer(id: string): boolean {
    const fs = this.on.get(id);
    if (!fs) return false;
    this.on.delete(id);
    return fs.removeLayer(id);
  }

  layerPath(id: string): string {
    return (this.on.get(id) ?? this.withXattrs).layerPath(id);
  }

  /** The file that is served layer `id`'s uncompressed stream (see `LayerFilesystem.streamPath`). */
  streamPath(id: string): string {
    return (this.on.get(id) ?? this.withXattrs).streamPath(id);
  }

  /** The tree of served layer `id`. */
  tree(id: string): LayerTree | undefined {
    return this.on.get(id)?.tree(id);
  }
}
