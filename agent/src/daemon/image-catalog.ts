import { DigestMismatchError, ShoalError } from "@shoal/base";
import { digestOf } from "@shoal/base";
import { attachWindows, readSeekableBlob, requireLazyLayers, type LayerIndex } from "@shoal/blockindex";
import {
  decodeLayerIndex, decodeSeekableLayerIndex, fetchIndexBytes, fetchSeekableIndex, layerSlotsOf, windowLoaderOf, type IndexSource, type RemoteLayer, type SeekableIndexSource, type WindowLoader,
} from "@shoal/fetch";
import type { Descriptor } from "@shoal/oci";
import type { LayerRef } from "@shoal/swarm";
import { parseManifest, parseReference, type ImageManifest, type ImageReference, type RegistryClients } from "@shoal/oci";
import type { Logger } from "pino";
import type { KeyValue } from "./kv.ts";

/** An image the agent knows: its manifest digest and lazy layers, bottom first. */
export interface CatalogImage {
  ref: ImageReference;
  digest: string;
  /** The lazy layers, bottom first (every layer, unless the image was loaded `partial`). */
  layers: RemoteLayer[];
  /** Every layer by position, bottom first: the lazy layer, or undefined for an ordinary one. */
  slots: Array<RemoteLayer | undefined>;
  /** Every layer's blob digest, bottom first. */
  digests: string[];
  /** Registry bytes spent on manifests and indexes by this load (0 when all came from the local catalog). */
  bytesFetched: number;
}

/** An image a lazy layer came with, and the layer's position in it (0 = bottom). */
export interface LayerLocation {
  ref: string;
  digest: string;
  position: number;
}

interface StoredImage {
  ref: string;
  manifest: string; // JSON bytes as text
  mediaType: string;
}

/**
 * Image metadata (manifests and layer indexes), fetched once (indexes from
 * the supernodes when configured, else from the registry) and kept in the
 * agent's database so restarts and remounts need no network. Indexes are
 * verified against their manifest annotation wherever they came from.
 */
export class ImageCatalog {
  private readonly db: KeyValue;
  private readonly clients: RegistryClients;
  private readonly indexSources: readonly IndexSource[];
  private readonly logger: Logger;
  private readonly indexes = new Map<string, LayerIndex>();
  private readonly seekableSources: readonly SeekableIndexSource[];
  private readonly seekable = new Map<string, SeekableLayer>();
  /** Where each seekable index loaded by this process came from (`supernode`, `local`, `catalog`). */
  readonly seekableOrigin = new Map<string, string>();

  /**
   * `indexSources`: where layer indexes come from, in order (the supernodes,
   * then the registry); `seekableSources`: where seekable indexes of
   * ordinary layers come from (none: ordinary layers are not read lazily).
   */
  constructor(components: { db: KeyValue; clients: RegistryClients; indexSources: readonly IndexSource[]; seekableSources?: readonly SeekableIndexSource[]; logger: Logger }) {
    this.seekableSources = components.seekableSources ?? [];
    this.db = components.db;
    this.clients = components.clients;
    this.indexSources = components.indexSources;
    this.logger = components.logger.child({ component: "catalog" });
  }

  /**
   * Load `refText`: by digest from the local catalog when known, else from
   * the registry (manifest, then each layer's index from the index sources).
   * Throws `NotConvertedError` for images that are not lazy (with `partial`,
   * ordinary layers are undefined slots instead; with `seekable`, they are
   * read through seekable indexes from the seekable sources); with `offline`,
   * `SHOAL_ERR_NOT_FOUND` for what is not in the local catalog. Every lazy
   * layer loaded is remembered by its index digest (`findLayer`).
   */
  async load(refText: string, opts: { signal?: AbortSignal; offline?: boolean; partial?: boolean; seekable?: boolean } = {}): Promise<CatalogImage> {
    const seekable = opts.seekable === true && this.seekableSources.length > 0;
    const ref = parseReference(refText);
    let bytesFetched = 0;
    let digest = ref.digest;
    let manifest: ImageManifest | undefined;
    if (digest) manifest = await this.storedManifest(digest);
    if (!manifest) {
      if (opts.offline) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `image ${refText} is not in the local catalog`);
      const resolved = await this.clients.client(ref.registry).resolveImage(ref, opts);
      digest = resolved.digest;
      manifest = resolved.manifest;
      bytesFetched += resolved.bytes.length + (resolved.index?.bytes.length ?? 0);
      const stored: StoredImage = { ref: ref.toString(), manifest: Buffer.from(resolved.bytes).toString("utf8"), mediaType: resolved.mediaType };
      await this.db.put(`image!${digest}`, JSON.stringify(stored));
    }
    if (!opts.partial && !seekable) requireLazyLayers(manifest.layers, ref.toString());
    const slots = await layerSlotsOf(ref, manifest, async (layer, info) => {
      const known = this.indexes.get(layer.digest);
      if (known) return known;
      const cached = await this.db.getBuffer(`index!${layer.digest}`);
      let bytes: Uint8Array;
      if (cached) bytes = cached;
      else {
        if (opts.offline) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `index of ${layer.digest} is not in the local catalog`);
        const got = await fetchIndexBytes(this.indexSources, layer, info, { ...opts, logger: this.logger });
        bytes = got.bytes;
        if (got.source.name === "origin") bytesFetched += bytes.length;
      }
      const index = decodeLayerIndex(bytes, info, layer.digest);
      if (!cached) await this.db.putBuffer(`index!${layer.digest}`, bytes);
      this.indexes.set(layer.digest, index);
      return index;
    }, seekable ? (layer, desc) => this.seekableIndex(layer, desc, opts) : undefined);
    const layers = slots.filter((l): l is RemoteLayer => l !== undefined);
    await Promise.all(slots.map(async (l, position) => {
      if (!l?.indexDigest) return;
      const key = `lazyidx!${l.indexDigest}`;
      if (!(await this.db.get(key))) await this.db.put(key, JSON.stringify({ ref: ref.toString(), digest: digest!, position } satisfies LayerLocation));
    }));
    if (seekable && !opts.offline) await this.checkDiffIds(ref, digest!, manifest, slots, opts);
    this.logger.debug({ image: ref.toString(), digest, layers: layers.length, bytesFetched }, "image loaded");
    return { ref, digest: digest!, layers, slots, digests: manifest.layers.map((d) => d.digest), bytesFetched };
  }

  /** The seekable index of an ordinary layer: in memory, in the database, else from the seekable sources (then kept). */
  private async seekableIndex(layer: LayerRef, desc: Descriptor, opts: { signal?: AbortSignal; offline?: boolean }): Promise<SeekableLayer> {
    const known = this.seekable.get(layer.digest);
    if (known) return known;
    const key = `seekidx!${layer.digest}`;
    const packKey = `seekwin!${layer.digest}`;
    let cached = await this.db.getBuffer(key);
    let index: LayerIndex | undefined;
    if (cached) {
      try {
        index = decodeSeekableLayerIndex(cached, layer.digest, desc.size);
      } catch (err) {
        // kept by an older shoal (another encoding) or damaged: asked for again
        this.logger.info({ layer: layer.digest, err: (err as Error).message }, "a kept seekable index does not decode; fetching it again");
        await this.forgetSeekable(layer.digest);
        cached = undefined;
      }
    }
    let got: SeekableLayer;
    if (cached && index) {
      // a local build keeps its window pack here; otherwise windows come from the supernodes as spans are read
      const pack = await this.db.getBuffer(packKey);
      if (pack) attachWindows(index, pack);
      const windows = pack ? undefined : windowLoaderOf(this.seekableSources.find((s) => s.fetchWindows), layer);
      got = { index, indexDigest: digestOf(cached), diffId: readSeekableBlob(cached).diffId, ...(windows ? { windows } : {}) };
      if (!this.seekableOrigin.has(layer.digest)) this.seekableOrigin.set(layer.digest, "catalog");
    } else {
      if (opts.offline) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `seekable index of ${layer.digest} is not in the local catalog`);
      const fetched = await fetchSeekableIndex(this.seekableSources, layer, desc, { ...opts, logger: this.logger });
      got = { index: fetched.index, indexDigest: fetched.indexDigest, diffId: readSeekableBlob(fetched.bytes).diffId, ...(fetched.windows ? { windows: fetched.windows } : {}) };
      this.seekableOrigin.set(layer.digest, fetched.source.name);
      if (fetched.source.name === "local") this.logger.warn({ layer: layer.digest }, "seekable index built here from a full read of the blob: this pull was not lazy (no supernode answered)");
      if (fetched.pack) await this.db.putBuffer(packKey, fetched.pack);
      await this.db.putBuffer(key, fetched.bytes);
    }
    this.seekable.set(layer.digest, got);
    return got;
  }

  /**
   * The uncompressed stream of each ordinary layer (its seekable index says
   * what it hashes to) must be what the image config's `rootfs.diff_ids`
   * lists, as an unpacking engine would insist: else the image does not
   * load (`SHOAL_ERR_DIGEST_MISMATCH`). Checked once per manifest; the
   * config is fetched for it (a few KiB). A supernode lying about the
   * digest is found out by the audit, which rebuilds the whole index.
   */
  private async checkDiffIds(ref: ImageReference, digest: string, manifest: ImageManifest, slots: ReadonlyArray<RemoteLayer | undefined>, opts: { signal?: AbortSignal }): Promise<void> {
    const positions = slots.flatMap((l, i) => (l?.kind === "seekable" ? [i] : []));
    const key = `diffids!${digest}`;
    if (positions.length === 0 || (await this.db.get(key))) return;
    const config = await this.clients.client(ref.registry).getBlob(ref.repository, manifest.config.digest, { maxSize: MAX_CONFIG_BYTES, ...(opts.signal ? { signal: opts.signal } : {}) });
    const ids = diffIdsOf(config, manifest.layers.length, ref.toString());
    for (const i of positions) {
      const layer = manifest.layers[i]!.digest;
      const stream = this.seekable.get(layer)?.diffId;
      if (stream !== ids[i]) throw new DigestMismatchError(`layer ${i + 1} (${layer}) of ${ref.toString()}: its uncompressed stream against the config's rootfs.diff_ids`, ids[i]!, stream ?? "unknown");
    }
    await this.db.put(key, "1");
  }

  /** Forget a seekable index found forged or wrong, so the next load asks again (the local source last). */
  async forgetSeekable(layer: string): Promise<void> {
    this.seekable.delete(layer);
    await this.db.del(`seekidx!${layer}`);
    await this.db.del(`seekwin!${layer}`);
  }

  /** Keep a manifest the registry mirror relayed (verified by `digest`), so that loading the image by digest asks no registry for it. */
  async remember(ref: string, digest: string, bytes: Uint8Array, mediaType: string): Promise<void> {
    if (await this.db.get(`image!${digest}`)) return;
    const stored: StoredImage = { ref, manifest: Buffer.from(bytes).toString("utf8"), mediaType };
    await this.db.put(`image!${digest}`, JSON.stringify(stored));
  }

  /** Where a lazy layer loaded before was found (by its index digest): the image and its position there. */
  async findLayer(indexDigest: string): Promise<LayerLocation | undefined> {
    const text = await this.db.get(`lazyidx!${indexDigest}`);
    return text === undefined ? undefined : (JSON.parse(text) as LayerLocation);
  }

  private async storedManifest(digest: string): Promise<ImageManifest | undefined> {
    const text = await this.db.get(`image!${digest}`);
    if (!text) return undefined;
    const stored = JSON.parse(text) as StoredImage;
    const m = parseManifest(Buffer.from(stored.manifest, "utf8"), stored.mediaType);
    return "layers" in m ? m : undefined;
  }
}

/** A seekable index as the catalog keeps it, with the diffID it states. */
interface SeekableLayer {
  index: LayerIndex;
  indexDigest: string;
  diffId: string;
  windows?: WindowLoader;
}

/** Largest image config read for its diffIDs, bytes. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** An image config's `rootfs.diff_ids`: one sha256 digest per layer, else `SHOAL_ERR_BAD_CONFIG`. */
function diffIdsOf(config: Uint8Array, layers: number, image: string): string[] {
  let ids: unknown;
  try {
    ids = (JSON.parse(Buffer.from(config).toString("utf8")) as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
  } catch {
    ids = undefined;
  }
  if (!Array.isArray(ids) || ids.length !== layers || !ids.every((d) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))) {
    throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `the config of ${image}: rootfs.diff_ids does not list one sha256 digest for each of the ${layers} layers`);
  }
  return ids as string[];
}
