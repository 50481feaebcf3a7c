/**
 * The lazy images in use on this host, whoever uses them (`shoal mount`, the
 * snapshotter's remote snapshots): each lazy layer as a directory of the one
 * FUSE session (`ROOT/layers/<id>`, shared by every user, removed with its
 * last), the image's chunks pinned in the store, its background stream
 * (startup chunks first: recorded here, else the fleet's startup trace from
 * the supernodes, else the order the image carries), and the recording of
 * what its first seconds read (kept here, and sent to the supernodes as the
 * fleet's trace when they had none).
 */
import { createHash } from "node:crypto";
import { chunkDigest, MergedTree } from "@shoal/blockindex";
import { PrefetchJob, type ChunkPos, type Fetcher, type PrefetchProgress, type RemoteLayer } from "@shoal/fetch";
import { TraceRecorder, type LayerRef, type StartupTrace } from "@shoal/swarm";
import type { Logger } from "pino";
import type { LayerData, LayerDirectories, LowerFile } from "../fs/index.ts";
import type { CatalogImage } from "./image-catalog.ts";
import type { KeyValue } from "./kv.ts";

/**
 * How much of a file its first read fetches early by default (uncompressed
 * bytes from the read on): binaries and libraries are read almost whole by
 * the loader, so one request for the file saves a round trip per chunk.
 */
export const WHOLE_FILE_BYTES = 8 << 20;

/** Longest wait for the fleet's startup trace before the prefetch starts without it, ms. */
export const TRACE_WAIT_MS = 2000;

/** Where startup traces are shared with the rest of the fleet (the supernodes). */
export interface FleetTraces {
  /** The trace of `image` (`digest`: its manifest digest), or undefined; unverified. */
  fetchTrace(image: LayerRef, opts?: { signal?: AbortSignal }): Promise<StartupTrace | undefined>;
  /** Offer `trace` as the trace of `image`; true when kept. */
  sendTrace(image: LayerRef, trace: StartupTrace): Promise<boolean>;
}

/** Where an image's startup chunks came from: recorded on this host, the fleet's trace, the image's own order, or none. */
export type StartupSource = "local" | "fleet" | "image" | "none";

/** The part of the chunk store images need: pinning the chunks of images in use. */
export interface ChunkPinning {
  pin(owner: string, digests: Iterable<string>): void;
  unpin(owner: string): void;
}

/** One image in use, as `shoal status` and the status page show it. */
export interface ImageStatus {
  image: string;
  digest: string;
  layers: number;
  /** Chunks of its lazy layers held on this host. */
  chunksLocal: number;
  chunksTotal: number;
  prefetch?: PrefetchProgress;
  /** Where the prefetch's startup chunks came from (absent until the prefetch started, and with prefetch off). */
  startup?: StartupSource;
  /** Its ordinary layers read through seekable indexes: where each index came from and whether it was checked against the blob. */
  seekable?: SeekableLayerStatus[];
}

/** An ordinary layer read through a seekable index. */
export interface SeekableLayerStatus {
  layer: string;
  /** `supernode`; `local` (built here from a full read: that pull was not lazy); `catalog` (kept from an earlier pull). */
  index: string;
  /** `pending` until every span is local, then `passed`, or `failed: <why>` (reads of the layer fail from then on). */
  audit: string;
}

/** Checks a seekable layer's index once its spans are all local (throws when forged). */
export type SeekableAudit = (layer: RemoteLayer) => Promise<void>;

/** Settings of `ActiveImages`. */
export interface ActiveImagesInit {
  prefetch: boolean;
  prefetchRate: number;
  startupWindowMs: number;
  /** How much of a file its first read fetches when it misses (default `WHOLE_FILE_BYTES`; 0: none). */
  wholeFileBytes?: number;
}

interface ActiveImage {
  image: CatalogImage;
  /** Layer directory ids by position; undefined for ordinary layers. */
  ids: Array<string | undefined>;
  /** Users, and the topmost position each uses. */
  users: Map<string, number>;
  job?: PrefetchJob;
  startup?: StartupSource;
  /** Audit results of its seekable layers, by digest. */
  audits: Map<string, string>;
  /** Ends the recording of its startup reads now (set while the window is open). */
  endRecording?: () => void;
}

/** Chunks `range` of layer `li` appended to `order`, each position once (`seen` holds those in it). */
function addChunks(order: ChunkPos[], seen: Set<string>, li: number, range: { first: number; last: number }): void {
  for (let c = range.first; c <= range.last; c++) {
    const key = `${li}:${c}`;
    if (seen.has(key)) continue;
    seen.add(key);
    order.push([li, c]);
  }
}

/** Where `img`'s startup trace lives at the supernodes: its repository and manifest digest. */
const imageRef = (img: CatalogImage): LayerRef => ({ registry: img.ref.registry, repository: img.ref.repository, digest: img.digest });

/** Layer directory ids: a chain over every layer digest below and at each position (a layer's directory depends on the layers below it). */
export function chainIds(digests: readonly string[]): string[] {
  const ids: string[] = [];
  let prev = "";
  for (const d of digests) {
    prev = createHash("sha256").update(`${prev} ${d}`).digest("hex").slice(0, 32);
    ids.push(prev);
  }
  return ids;
}

/** See the module comment. */
export class ActiveImages {
  private readonly fs: LayerDirectories;
  private readonly fetcher: Fetcher;
  private readonly store: ChunkPinning;
  private readonly db: KeyValue;
  private readonly logger: Logger;
  private readonly init: ActiveImagesInit;
  /** True while the host serves its swarm (prefetch jobs put their idle-time work off meanwhile). */
  private readonly sharing: (() => boolean) | undefined;
  private readonly images = new Map<string, ActiveImage>();
  private readonly layerUsers = new Map<string, number>();
  /** Recorders of startup reads: layer id → callbacks. */
  private readonly recorders = new Map<string, Set<(layerId: string, offset: number, length: number) => void>>();
  private readonly traces: FleetTraces | undefined;
  /** Set by `stop`: no prefetch starts after it. */
  private stopped = false;

  private readonly audit: SeekableAudit | undefined;
  private readonly indexOrigin: ((layer: string) => string | undefined) | undefined;

  /** `audit`: checks seekable layers once streamed in; `indexOrigin`: where a seekable layer's index came from; `traces`: the fleet's startup traces. */
  constructor(
    components: { fs: LayerDirectories; fetcher: Fetcher; store: ChunkPinning; db: KeyValue; logger: Logger; sharing?: () => boolean; audit?: SeekableAudit; indexOrigin?: (layer: string) => string | undefined; traces?: FleetTraces },
    init: ActiveImagesInit,
  ) {
    this.traces = components.traces;
    this.audit = components.audit;
    this.indexOrigin = components.indexOrigin;
    this.fs = components.fs;
    this.fetcher = components.fetcher;
    this.store = components.store;
    this.db = components.db;
    this.logger = components.logger.child({ component: "images" });
    this.sharing = components.sharing;
    this.init = init;
  }

  /**
   * Start using layers `0..upTo` (default: all) of `img` for `user`: their
   * directories exist when this resolves. Returns every position's directory
   * (undefined for ordinary layers), bottom first. Using an image again for
   * the same user widens what it uses, never narrows it. In block mode a
   * layer's directory is its erofs mount, which is waited for unless
   * `wait` is false (a restart, before the FUSE connections serve: the
   * kernel's mount asks them for the layer's stream).
   */
  async use(img: CatalogImage, user: string, upTo = img.slots.length - 1, opts: { wait?: boolean } = {}): Promise<Array<string | undefined>> {
    let active = this.images.get(img.digest);
    if (!active) {
      const chain = chainIds(img.digests);
      active = { image: img, ids: img.slots.map((l, i) => (l ? chain[i] : undefined)), users: new Map(), audits: new Map() };
      this.images.set(img.digest, active);
      this.store.pin(img.digest, img.layers.flatMap((l) => Array.from({ length: l.index.chunkCount }, (_, c) => chunkDigest(l.index.chunk(c)))));
      const local = await this.startupOrder(img.digest);
      this.record(active, local.length === 0);
      if (this.init.prefetch) void this.startPrefetch(active, local);
    }
    const before = active.users.get(user) ?? -1;
    for (let i = before + 1; i <= upTo; i++) this.addLayer(active, i);
    active.users.set(user, Math.max(before, upTo));
    const ready = this.fs.ready;
    if (ready && opts.wait !== false) await Promise.all(active.ids.slice(0, upTo + 1).map((id) => (id === undefined ? undefined : ready.call(this.fs, id))));
    return active.ids.map((id) => (id === undefined ? undefined : this.fs.layerPath(id)));
  }

  /**
   * Start `a`'s background stream, its startup chunks first: `local` (the
   * order recorded on this host), else the fleet's trace (waited for up to
   * `TRACE_WAIT_MS`), else the order the image carries in its indexes.
   */
  private async startPrefetch(a: ActiveImage, local: ChunkPos[]): Promise<void> {
    const img = a.image;
    let first = local;
    let source: StartupSource = "local";
    if (first.length === 0 && this.traces) {
      first = await this.fleetOrder(img);
      source = "fleet";
    }
    if (first.length === 0) {
      first = img.layers.flatMap((l, li) => l.index.prefetch.map((c): ChunkPos => [li, c]));
      source = first.length > 0 ? "image" : "none";
    }
    if (this.stopped || this.images.get(img.digest) !== a) return; // released, or the agent stops, meanwhile
    a.startup = source;
    const job = new PrefetchJob({ fetcher: this.fetcher, logger: this.logger, ...(this.sharing ? { busy: this.sharing } : {}) }, { layers: img.layers, first, rateBytesPerSec: this.init.prefetchRate });
    a.job = job;
    void job.done.then(() => this.auditAll(a)).then(() => this.whollyLocal(a));
  }

  /**
   * The fleet's startup trace of `img` as chunk positions, or [] when there
   * is none, it does not arrive in time, or it is not this image's (another
   * manifest digest); ranges of layers the image does not have, or past a
   * layer's end, are dropped.
   */
  private async fleetOrder(img: CatalogImage): Promise<ChunkPos[]> {
    let trace: StartupTrace | undefined;
    try {
      trace = await this.traces!.fetchTrace(imageRef(img), { signal: AbortSignal.timeout(TRACE_WAIT_MS) });
    } catch (err) {
      this.logger.warn({ image: img.digest, err: (err as Error).message }, "no startup trace from the supernodes; prefetching without one");
      return [];
    }
    if (!trace) return [];
    if (trace.image !== img.digest) {
      this.logger.warn({ image: img.digest, traced: trace.image }, "the supernodes' startup trace is another image's; ignored");
      return [];
    }
    const position = new Map(img.layers.map((l, li) => [l.digest, li]));
    const order: ChunkPos[] = [];
    const seen = new Set<string>();
    let foreign = 0;
    for (const [n, offset, length] of trace.ranges) {
      const li = position.get(trace.layers[n]!);
      const layer = li === undefined ? undefined : img.layers[li];
      const size = layer?.index.uncompressedSize ?? 0;
      const range = layer && offset < size ? layer.index.chunksForRange(offset, Math.min(length, size - offset)) : undefined;
      if (!range) {
        foreign++;
        continue;
      }
      addChunks(order, seen, li!, range);
    }
    this.logger.info({ image: img.digest, ranges: trace.ranges.length, chunks: order.length, dropped: foreign }, "prefetching the fleet's startup trace first");
    return order;
  }

  /** `user` stops using image `digest`; the image's layers and stream go with its last user. */
  release(digest: string, user: string): void {
    const active = this.images.get(digest);
    const upTo = active?.users.get(user);
    if (!active || upTo === undefined) return;
    active.users.delete(user);
    for (let i = 0; i <= upTo; i++) this.releaseLayer(active.ids[i]);
    if (active.users.size > 0) return;
    active.endRecording?.();
    active.job?.stop();
    this.store.unpin(digest);
    this.images.delete(digest);
  }

  /** The directory of layer `id` when the FUSE session serves it now. */
  dir(id: string): string | undefined {
    return this.fs.has(id) ? this.fs.layerPath(id) : undefined;
  }

  /** The image `digest` while in use. */
  image(digest: string): CatalogImage | undefined {
    return this.images.get(digest)?.image;
  }

  /**
   * Tell the layer directories which of `a`'s lazy layers are wholly local
   * (block mode keeps their streams in local files); a seekable layer only
   * once its index passed the audit against its blob.
   */
  private whollyLocal(a: ActiveImage): void {
    if (!this.fs.whollyLocal || this.images.get(a.image.digest) !== a) return;
    a.image.slots.forEach((layer, i) => {
      const id = a.ids[i];
      if (!layer || id === undefined || (layer.kind === "seekable" && a.audits.get(layer.digest) !== "passed")) return;
      if (!this.whollyHere(layer)) return;
      this.fs.whollyLocal!(id, (offset, length) => this.fetcher.read(layer, offset, length));
    });
  }

  /** Whether every chunk of `layer` is local. */
  private whollyHere(layer: RemoteLayer): boolean {
    for (let c = 0; c < layer.index.chunkCount; c++) if (!this.fetcher.has(layer, c)) return false;
    return true;
  }

  /** Check each seekable layer of `a` whose spans are all local, once. */
  private async auditAll(a: ActiveImage): Promise<void> {
    if (!this.audit) return;
    // chunks handed to readers may still be on their way to the store, which the audit reads
    await this.fetcher.drain();
    for (const l of a.image.layers) {
      if (l.kind !== "seekable" || a.audits.has(l.digest)) continue;
      if (!this.whollyHere(l)) continue;
      try {
        await this.audit(l);
        a.audits.set(l.digest, "passed");
        this.logger.info({ layer: l.digest, spans: l.index.chunkCount }, "seekable index checked against the blob");
      } catch (err) {
        a.audits.set(l.digest, `failed: ${(err as Error).message}`);
        this.logger.error({ layer: l.digest, err: (err as Error).message }, "seekable index is forged or wrong: reads of the layer fail from now on");
      }
    }
  }

  /** Per image in use: its lazy chunks held locally (store, or landing there) and prefetch progress. */
  status(): ImageStatus[] {
    return [...this.images.entries()].map(([digest, a]) => {
      let chunksLocal = 0;
      let chunksTotal = 0;
      for (const l of a.image.layers) {
        chunksTotal += l.index.chunkCount;
        for (let i = 0; i < l.index.chunkCount; i++) if (this.fetcher.has(l, i)) chunksLocal++;
      }
      const seekable = a.image.layers.filter((l) => l.kind === "seekable").map((l) => ({ layer: l.digest, index: this.indexOrigin?.(l.digest) ?? "catalog", audit: a.audits.get(l.digest) ?? "pending" }));
      return {
        image: a.image.ref.toString(), digest, layers: a.image.slots.length, chunksLocal, chunksTotal,
        ...(a.job ? { prefetch: a.job.progress() } : {}), ...(a.startup ? { startup: a.startup } : {}), ...(seekable.length > 0 ? { seekable } : {}),
      };
    });
  }

  /** The lazy layers of every image in use, one per digest. */
  layers(): RemoteLayer[] {
    const byDigest = new Map<string, RemoteLayer>();
    for (const a of this.images.values()) for (const l of a.image.layers) if (!byDigest.has(l.digest)) byDigest.set(l.digest, l);
    return [...byDigest.values()];
  }

  /** The prefetch job of image `digest`, if any (tests wait on `done`). */
  prefetchJob(digest: string): PrefetchJob | undefined {
    return this.images.get(digest)?.job;
  }

  /** Stop every background stream (at shutdown; directories go with the FUSE session). */
  stop(): void {
    this.stopped = true;
    for (const a of this.images.values()) a.job?.stop();
  }

  /** The startup order recorded for image `digest` (chunk positions in its lazy layers), or []. */
  async startupOrder(digest: string): Promise<ChunkPos[]> {
    const text = await this.db.get(`startup!${digest}`);
    if (!text) return [];
    try {
      return JSON.parse(text) as ChunkPos[];
    } catch {
      return [];
    }
  }

  /** Add the directory of position `i` of `active` unless the filesystem has it (ordinary positions have none). */
  private addLayer(active: ActiveImage, i: number): void {
    const id = active.ids[i];
    const layer = active.image.slots[i];
    if (id === undefined || layer === undefined) return;
    this.layerUsers.set(id, (this.layerUsers.get(id) ?? 0) + 1);
    if (this.fs.has(id)) return;
    const { slots } = active.image;
    let lower: MergedTree | undefined;
    // the lazy layers below this one; ordinary layers below are not in the FUSE session
    const below = slots.slice(0, i).flatMap((l, p) => (l ? [{ layer: l, id: active.ids[p]! }] : []));
    this.fs.addLayer({
      id,
      index: layer.index,
      data: this.dataOf(layer, id),
      resolveLower: (path: string): LowerFile | undefined => {
        lower ??= MergedTree.build(below.map((b) => b.layer.index));
        const node = lower.lookup(path);
        if (!node) return undefined;
        const b = below[node.inode.layer];
        // an implicit directory (made for paths, in no layer) carries no data
        if (!b) return { entry: node.inode.entry, data: this.dataOf(layer, id) };
        return { entry: node.inode.entry, data: this.dataOf(b.layer, b.id), layerId: b.id };
      },
    });
  }

  private dataOf(l: RemoteLayer, lid: string): LayerData {
    return {
      read: (offset: number, length: number, opts?: { signal?: AbortSignal }) => {
        const rec = this.recorders.get(lid);
        if (rec) for (const f of rec) f(lid, offset, length);
        return this.fetcher.read(l, offset, length, opts);
      },
      readingFile: (offset: number, length: number, readAt: number) => {
        // on a miss: one request from the chunk being read to the file's end (up to `wholeFileBytes`), which the
        // read joins; another for the part before it, if the first read is not at the start
        const early = (from: number, to: number) => {
          const range = to > from ? l.index.chunksForRange(from, to - from) : undefined;
          if (!range) return;
          this.fetcher.ensureRange(l, range.first, range.last, { maxRunBytes: whole }).catch((err: unknown) => {
            this.logger.debug({ layer: l.digest, err: (err as Error).message }, "fetching a file early failed; its reads fetch what they need");
          });
        };
        const whole = this.init.wholeFileBytes ?? WHOLE_FILE_BYTES;
        if (whole <= 0) return;
        const end = offset + length;
        const at = Math.min(Math.max(readAt, offset), end);
        // the read's chunk is here already (the startup prefetch brought it): what this file needs early was known
        const own = l.index.chunksForRange(at, 1);
        if (own && this.fetcher.has(l, own.first)) return;
        // from the read's miss window (its neighbours come along, as a miss's would) to the file's end
        const window = this.fetcher.missWindow(l, at);
        const from = Math.min(at, l.index.chunk(window.first).uncompressedOffset);
        const last = l.index.chunk(window.last);
        early(from, Math.max(Math.min(end, at + whole), last.uncompressedOffset + last.uncompressedLength));
        early(Math.max(offset, at - whole), Math.min(from, end));
      },
    };
  }

  private releaseLayer(id: string | undefined): void {
    if (id === undefined) return;
    const n = (this.layerUsers.get(id) ?? 1) - 1;
    if (n > 0) {
      this.layerUsers.set(id, n);
      return;
    }
    this.layerUsers.delete(id);
    this.fs.removeLayer(id);
  }

  /**
   * Record what the first `startupWindowMs` of `active` read: the chunks,
   * saved as its startup order, and the byte ranges, sent to the supernodes
   * as the fleet's trace when `share` (no order was recorded here before).
   * The window ends early when the image's last user releases it: a
   * container that is done sooner has read all its start reads.
   */
  private record(active: ActiveImage, share: boolean): void {
    const img = active.image;
    const lazyIds = img.slots.flatMap((l, p) => (l ? [active.ids[p]!] : []));
    const seen = new Set<string>();
    const order: ChunkPos[] = [];
    const trace = new TraceRecorder();
    const onRead = (layerId: string, offset: number, length: number) => {
      const li = lazyIds.indexOf(layerId);
      const layer = img.layers[li];
      const range = layer?.index.chunksForRange(offset, length);
      if (!layer || !range) return;
      trace.read(layer.digest, offset, length);
      addChunks(order, seen, li, range);
    };
    for (const id of lazyIds) {
      let set = this.recorders.get(id);
      if (!set) this.recorders.set(id, (set = new Set()));
      set.add(onRead);
    }
    const end = () => {
      clearTimeout(timer);
      delete active.endRecording;
      for (const id of lazyIds) {
        const set = this.recorders.get(id);
        set?.delete(onRead);
        if (set && set.size === 0) this.recorders.delete(id);
      }
      if (order.length === 0) return;
      this.db.put(`startup!${img.digest}`, JSON.stringify(order)).catch((err: Error) => this.logger.warn({ err: err.message }, "could not save startup order"));
      this.logger.info({ digest: img.digest, chunks: order.length }, "startup order recorded");
      // the fleet's trace comes from the first host to run the image; a host that ran on one adds nothing
      if (!share || !this.traces || active.startup === "fleet") return;
      this.traces.sendTrace(imageRef(img), trace.trace(img.digest)).then(
        (stored) => this.logger.info({ digest: img.digest, stored }, stored ? "startup trace sent to the supernodes" : "the supernodes keep an earlier startup trace"),
        (err: unknown) => this.logger.warn({ digest: img.digest, err: (err as Error).message }, "could not send the startup trace to the supernodes"),
      );
    };
    const timer = setTimeout(end, this.init.startupWindowMs);
    timer.unref();
    active.endRecording = end;
  }
}
