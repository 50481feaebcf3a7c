/**
 * The snapshotter: containerd's snapshot model over two kinds of layer.
 *
 * - **Ordinary snapshots**, as containerd's overlay snapshotter keeps them:
 *   each has a directory `ROOT/<id>/fs` (and `work`); `Prepare` hands it out
 *   writable (over its parents, as an overlay upper dir), containerd applies
 *   a layer's diff into it, and `Commit` makes it a lower layer.
 * - **Remote snapshots**: a `Prepare` for a lazy layer (shoal's labels, and
 *   `containerd.io/snapshot.ref` naming the committed snapshot containerd
 *   wants) mounts the layer lazily in the agent's FUSE session, commits it at
 *   once and answers "already exists", so containerd downloads nothing.
 *
 * Chains may mix both in any order: an active snapshot is an overlay whose
 * lower dirs are its parents', nearest first, whatever their kind.
 */
import { mkdir, readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { BadRequestError, kindOf, ShoalError, toShoalError, type ErrorKind } from "@shoal/base";
import type { Logger } from "pino";
import { parseFilters } from "./filters.ts";
import { parseLabels, TARGET_LABEL, type SnapshotLabels } from "./labels.ts";
import type { RemoteLayerRecord, SnapshotKind, SnapshotRecord, SnapshotRecords } from "./records.ts";
import { diskUsage } from "./usage.ts";

/** A mount, as containerd's `Mount` message. */
export interface Mount {
  type: string;
  source: string;
  options: string[];
}

/** A snapshot as containerd's `Info` message. */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: number;
  updated: number;
}

/** Where lazy layers come from: the agent's FUSE session and image catalog. */
export interface RemoteLayers {
  /**
   * Mount the lazy layer `labels` describe, above the chain `below` (bottom
   * first), in the FUSE session. Rejects with a `ShoalError`: a layer shoal
   * cannot serve now (not converted, unknown, its index unavailable from
   * every source) makes the snapshot an ordinary one instead.
   */
  acquire(labels: SnapshotLabels, below: readonly SnapshotRecord[], opts: { signal?: AbortSignal }): Promise<RemoteLayerRecord>;
  /** Mount a recorded remote layer again (after a restart), without the network when its index is local. */
  restore(layer: RemoteLayerRecord): Promise<void>;
  /** Stop using a remote layer (its directory goes when nothing else uses it). */
  release(layer: RemoteLayerRecord): void;
  /** The directory of a remote layer that is served now, else undefined. */
  dir(layer: RemoteLayerRecord): string | undefined;
  /** What the layer takes: its bytes in the local chunk store, and its entries. */
  usage(layer: RemoteLayerRecord): { size: number; inodes: number };
}

/** Whether a directory is in use by a mount (upper, lower or bind source). */
export interface MountTable {
  inUse(dirs: readonly string[]): Promise<boolean>;
}

/** Settings of a `Snapshotter`. */
export interface SnapshotterInit {
  /** Where ordinary snapshots keep their directories. */
  root: string;
  /** How long mounting a remote layer may take before `Prepare` answers UNAVAILABLE, ms (default 30 s). */
  remoteTimeoutMs?: number;
}

/**
 * Failures after which a lazy layer is left to containerd as an ordinary
 * snapshot: shoal cannot serve it from any of its sources, and containerd,
 * with its own hosts and credentials, may. Bad labels, corrupt or malformed
 * indexes, deadlines and local failures are errors instead.
 */
const FALLBACK_KINDS: ReadonlySet<ErrorKind> = new Set(["precondition", "not-found", "upstream", "unavailable", "unauthorized", "denied", "unsupported"]);

function fallsBack(err: ShoalError): boolean {
  return err.code !== "SHOAL_ERR_TIMEOUT" && FALLBACK_KINDS.has(kindOf(err));
}

const kindError = (message: string) => new ShoalError("SHOAL_ERR_SNAPSHOT_KIND", message);

/** See the module comment. One operation at a time changes records (a queue). */
export class Snapshotter {
  readonly #records: SnapshotRecords;
  readonly #remote: RemoteLayers | undefined;
  readonly #mounts: MountTable;
  readonly #log: Logger;
  readonly #root: string;
  readonly #remoteTimeoutMs: number;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(components: { records: SnapshotRecords; mounts: MountTable; logger: Logger; remote?: RemoteLayers }, init: SnapshotterInit) {
    this.#records = components.records;
    this.#remote = components.remote;
    this.#mounts = components.mounts;
    this.#log = components.logger.child({ component: "snapshotter" });
    this.#root = init.root;
    this.#remoteTimeoutMs = init.remoteTimeoutMs ?? 30_000;
  }

  /** Run `fn` after every operation queued before it. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  /** Mount every remote snapshot recorded by an earlier run again; failures leave the snapshot unavailable, not gone. */
  async restore(): Promise<void> {
    await mkdir(this.#root, { recursive: true });
    for (const r of await this.#records.all()) {
      if (!r.remote || !this.#remote) continue;
      try {
        await this.#remote.restore(r.remote);
      } catch (err) {
        this.#log.error({ snapshot: r.key, layer: r.remote.digest, err: (err as Error).message }, "could not restore a remote snapshot; it is unavailable until its layer can be mounted");
      }
    }
  }

  /** An active snapshot `key` over `parent`; its mounts. A remote layer is committed at once and answered `SHOAL_ERR_SNAPSHOT_EXISTS`. */
  prepare(key: string, parent: string, labels: Record<string, string> | undefined, opts: { signal?: AbortSignal } = {}): Promise<Mount[]> {
    return this.#create("active", key, parent, parseLabels(labels), opts);
  }

  /** A read-only snapshot `key` of `parent`; its mounts. */
  view(key: string, parent: string, labels: Record<string, string> | undefined): Promise<Mount[]> {
    return this.#create("view", key, parent, parseLabels(labels), {});
  }

  async #create(kind: SnapshotKind, key: string, parent: string, labels: SnapshotLabels, opts: { signal?: AbortSignal }): Promise<Mount[]> {
    if (!key) throw new BadRequestError("snapshot key is empty");
    // A remote layer is mounted before the queue (it may fetch its index), then recorded in it.
    // lazy layers, and ordinary ones CRI's labels name (the remote side may read them through seekable indexes)
    if (kind === "active" && labels.target && (labels.lazy || labels.cri) && this.#remote) {
      const made = await this.#prepareRemote(key, parent, labels, opts);
      if (made) throw new ShoalError("SHOAL_ERR_SNAPSHOT_EXISTS", `target snapshot ${JSON.stringify(labels.target)} exists (a remote snapshot of shoal)`);
    }
    return this.#serial(async () => {
      await this.#mustBeNew(key);
      const chain = await this.#chain(parent);
      const now = Date.now();
      const r: SnapshotRecord = { key, id: await this.#records.nextId(), kind, parent, labels: labels.all, created: now, updated: now };
      await mkdir(join(this.#dir(r.id), "fs"), { recursive: true });
      if (kind === "active") await mkdir(join(this.#dir(r.id), "work"), { recursive: true });
      const mounts = this.#mountsOf(r, chain);
      await this.#records.put(r);
      return mounts;
    });
  }

  /**
   * Mount the remote layer `labels` name and commit it as `key`: true when
   * done; false when shoal cannot serve it (the caller makes an ordinary
   * snapshot). A committed snapshot of the same target and parent is reused.
   */
  async #prepareRemote(key: string, parent: string, labels: SnapshotLabels, opts: { signal?: AbortSignal }): Promise<boolean> {
    const existing = (await this.#records.all()).find((r) => r.kind === "committed" && r.parent === parent && r.labels[TARGET_LABEL] === labels.target);
    if (existing) return true;
    const chain = await this.#chain(parent);
    let layer: RemoteLayerRecord;
    const deadline = AbortSignal.timeout(this.#remoteTimeoutMs);
    try {
      layer = await this.#remote!.acquire(labels, [...chain].reverse(), { signal: opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline });
    } catch (cause) {
      if (opts.signal?.aborted) throw cause;
      const err = deadline.aborted
        ? new ShoalError("SHOAL_ERR_TIMEOUT", `the lazy layer ${labels.lazy?.indexDigest ?? ""} could not be mounted within ${this.#remoteTimeoutMs} ms; try again`, { cause })
        : toShoalError(cause);
      // an ordinary layer shoal cannot serve is containerd's to fill, whatever the reason
      if (labels.lazy && !fallsBack(err)) {
        this.#log.warn({ key, target: labels.target, err: err.message, code: err.code }, "lazy layer refused");
        throw err;
      }
      this.#log.warn({ key, target: labels.target, err: err.message, code: err.code }, "lazy layer cannot be mounted from any source; preparing an ordinary snapshot, which containerd fills");
      return false;
    }
    try {
      await this.#serial(async () => {
        await this.#mustBeNew(key);
        const now = Date.now();
        await this.#records.put({ key, id: "", kind: "committed", parent, labels: labels.all, created: now, updated: now, remote: layer });
      });
    } catch (err) {
      this.#remote!.release(layer);
      throw err;
    }
    this.#log.info({ key, target: labels.target, layer: layer.digest }, "remote snapshot committed");
    return true;
  }

  /** The mounts of active or view snapshot `key`. */
  async mounts(key: string): Promise<Mount[]> {
    const r = await this.#records.require(key);
    if (r.kind === "committed") throw kindError(`snapshot ${JSON.stringify(key)} is committed: it has no mounts of its own`);
    return this.#mountsOf(r, await this.#chain(r.parent));
  }

  /** Commit active snapshot `key` as `name`, labelled `labels` (as containerd does, the active snapshot's labels are not carried over). */
  commit(name: string, key: string, labels: Record<string, string> | undefined): Promise<void> {
    const parsed = labels === undefined ? undefined : parseLabels(labels);
    return this.#serial(async () => {
      if (!name) throw new BadRequestError("snapshot name is empty");
      const r = await this.#records.require(key);
      if (r.kind !== "active") throw kindError(`snapshot ${JSON.stringify(key)} is ${r.kind}, not active: only active snapshots commit`);
      await this.#mustBeNew(name);
      const committed: SnapshotRecord = { ...r, key: name, kind: "committed", labels: parsed?.all ?? {}, updated: Date.now() };
      await this.#records.put(committed);
      await this.#records.del(key);
    });
  }

  /** Remove snapshot `key`: refused while it has children or a mount uses it. */
  remove(key: string): Promise<void> {
    return this.#serial(async () => {
      const r = await this.#records.require(key);
      const all = await this.#records.all();
      const child = all.find((c) => c.parent === key);
      if (child) throw new ShoalError("SHOAL_ERR_SNAPSHOT_IN_USE", `snapshot ${JSON.stringify(key)} has a child (${JSON.stringify(child.key)})`);
      const dirs = r.remote ? [this.#remote?.dir(r.remote)].filter((d): d is string => d !== undefined) : [join(this.#dir(r.id), "fs")];
      if (await this.#mounts.inUse(dirs)) throw new ShoalError("SHOAL_ERR_SNAPSHOT_IN_USE", `snapshot ${JSON.stringify(key)} is mounted`);
      await this.#records.del(key);
      if (r.remote) this.#remote?.release(r.remote);
      else await rm(this.#dir(r.id), { recursive: true, force: true });
    });
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return infoOf(await this.#records.require(key));
  }

  /** Update the labels of `info.name` (the only mutable field): all of them, or those `paths` name (`labels`, `labels.<key>`). */
  update(info: { name: string; labels?: Record<string, string> }, paths: readonly string[]): Promise<SnapshotInfo> {
    const parsed = parseLabels(info.labels);
    return this.#serial(async () => {
      const r = await this.#records.require(info.name);
      let labels = { ...r.labels };
      if (paths.length === 0) labels = parsed.all;
      for (const p of paths) {
        if (p === "labels") labels = parsed.all;
        else if (p.startsWith("labels.")) {
          const k = p.slice("labels.".length);
          if (k in parsed.all) labels[k] = parsed.all[k]!;
          else delete labels[k];
        } else throw new BadRequestError(`cannot update field ${JSON.stringify(p)}: only labels are mutable`);
      }
      const updated = { ...r, labels, updated: Date.now() };
      await this.#records.put(updated);
      return infoOf(updated);
    });
  }

  /** Every snapshot matching any of `filters` (containerd's filter syntax; all when none). */
  async list(filters: readonly string[]): Promise<SnapshotInfo[]> {
    const match = parseFilters(filters);
    return (await this.#records.all()).map(infoOf).filter((i) => match((path) => fieldOf(i, path)));
  }

  /** Disk used by snapshot `key`: its own directory (an ordinary one), or its layer's local chunks (a remote one). */
  async usage(key: string): Promise<{ size: number; inodes: number }> {
    const r = await this.#records.require(key);
    if (r.remote) return this.#remote?.usage(r.remote) ?? { size: 0, inodes: 0 };
    return diskUsage(join(this.#dir(r.id), "fs"));
  }

  /** Remove directories no snapshot refers to (left by crashes, or by removes that could not finish). */
  cleanup(): Promise<void> {
    return this.#serial(async () => {
      const used = new Set((await this.#records.all()).map((r) => r.id).filter(Boolean));
      let entries: string[] = [];
      try {
        entries = await readdir(this.#root);
      } catch {
        return;
      }
      for (const e of entries) {
        if (used.has(e)) continue;
        await rm(join(this.#root, e), { recursive: true, force: true });
        this.#log.info({ dir: e }, "removed an unreferenced snapshot directory");
      }
    });
  }

  #dir(id: string): string {
    return join(this.#root, id);
  }

  async #mustBeNew(key: string): Promise<void> {
    if (await this.#records.get(key)) throw new ShoalError("SHOAL_ERR_SNAPSHOT_EXISTS", `snapshot ${JSON.stringify(key.slice(0, 300))} already exists`);
  }

  /** The committed chain from `parent` down, nearest first; `SHOAL_ERR_NOT_FOUND` or `SHOAL_ERR_PARENT_NOT_COMMITTED` for a bad parent. */
  async #chain(parent: string): Promise<SnapshotRecord[]> {
    const out: SnapshotRecord[] = [];
    for (let k = parent; k; ) {
      const r = await this.#records.get(k);
      if (!r) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `parent snapshot ${JSON.stringify(k.slice(0, 300))} does not exist`);
      if (r.kind !== "committed") throw new ShoalError("SHOAL_ERR_PARENT_NOT_COMMITTED", `parent snapshot ${JSON.stringify(k.slice(0, 300))} is ${r.kind}, not committed`);
      out.push(r);
      k = r.parent;
    }
    return out;
  }

  /** The directory of committed snapshot `r` as a lower layer; `SHOAL_ERR_LAYER_UNAVAILABLE` for a remote layer not served now. */
  #lowerDir(r: SnapshotRecord): string {
    if (!r.remote) return join(this.#dir(r.id), "fs");
    const dir = this.#remote?.dir(r.remote);
    if (!dir) throw new ShoalError("SHOAL_ERR_LAYER_UNAVAILABLE", `the lazy layer of snapshot ${JSON.stringify(r.key.slice(0, 300))} (${r.remote.digest}) is not mounted now`);
    return dir;
  }

  /** Mounts of `r` over `chain` (nearest first), as containerd's overlay snapshotter gives them. */
  #mountsOf(r: SnapshotRecord, chain: readonly SnapshotRecord[]): Mount[] {
    const lowers = chain.map((p) => this.#lowerDir(p));
    const own = join(this.#dir(r.id), "fs");
    if (lowers.length === 0) return [{ type: "bind", source: own, options: [r.kind === "view" ? "ro" : "rw", "rbind"] }];
    if (r.kind === "view" && lowers.length === 1) return [{ type: "bind", source: lowers[0]!, options: ["ro", "rbind"] }];
    const options = ["index=off"];
    if (r.kind === "active") options.push(`workdir=${join(this.#dir(r.id), "work")}`, `upperdir=${own}`);
    options.push(`lowerdir=${lowers.join(":")}`);
    return [{ type: "overlay", source: "overlay", options }];
  }
}

function infoOf(r: SnapshotRecord): SnapshotInfo {
  return { name: r.key, parent: r.parent, kind: r.kind, labels: r.labels, created: r.created, updated: r.updated };
}

/** As containerd's snapshot filter adaptor names kinds. */
const KIND_NAMES: Record<SnapshotKind, string> = { view: "view", active: "active", committed: "committed" };

/** A field of `i` as containerd's snapshot filter adaptor names it. */
function fieldOf(i: SnapshotInfo, path: string[]): string | undefined {
  const [head, ...rest] = path;
  if (head === "name" && rest.length === 0) return i.name;
  if (head === "parent" && rest.length === 0) return i.parent;
  if (head === "kind" && rest.length === 0) return KIND_NAMES[i.kind];
  if (head === "labels" && rest.length > 0) return i.labels[rest.join(".")];
  return undefined;
}
