/**
 * Opening a lazy image: its manifest, then each layer's index, from the
 * first index source that has it (the supernodes, which read each index
 * from the registry once for every agent, then the registry itself),
 * verified against the manifest's annotation wherever it came from. The
 * agent's catalog and `shoal ls`/`shoal cat` both open images this way.
 */
import { decodeIndexMembers, parseLazyAnnotations, requireLazyLayers, type LayerIndex, type LazyLayerInfo } from "@shoal/blockindex";
import type { Descriptor, ImageManifest, ImageReference, Platform, RegistryClients, ResolvedImage } from "@shoal/oci";
import type { LayerRef } from "@shoal/swarm";
import type { Logger } from "pino";
import type { RemoteLayer } from "./remote-layer.ts";
import { fetchSeekableIndex, type SeekableIndexSource, type WindowLoader } from "./seekable.ts";

/** Loads the seekable index of an ordinary layer (its descriptor `desc`): the index and the digest of its encoding. */
export type SeekableLoader = (layer: LayerRef, desc: Descriptor) => Promise<{ index: LayerIndex; indexDigest: string; windows?: WindowLoader }>;

/** A place layer indexes come from. */
export interface IndexSource {
  /** Name for logs: `supernode`, `origin`. */
  readonly name: string;
  /** The index region of lazy layer `layer` (unverified: the caller checks it against `info.indexDigest`). */
  fetchIndex(layer: LayerRef, info: LazyLayerInfo, opts: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/** The registry as an index source: one range request for the index region. */
export class RegistryIndexSource implements IndexSource {
  readonly name = "origin";
  private readonly clients: RegistryClients;

  constructor(components: { clients: RegistryClients }) {
    this.clients = components.clients;
  }

  fetchIndex(layer: LayerRef, info: LazyLayerInfo, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return this.clients.client(layer.registry).getBlobRange(layer.repository, layer.digest, info.location.offset, info.location.size, opts);
  }
}

/**
 * The index bytes of one layer from the first of `sources` that answers
 * bytes of the annotated size; the last source's failure is thrown. Which
 * source served them is returned too (registry bytes count as pull cost).
 */
export async function fetchIndexBytes(sources: readonly IndexSource[], layer: LayerRef, info: LazyLayerInfo, opts: { signal?: AbortSignal; logger?: Logger } = {}): Promise<{ bytes: Uint8Array; source: IndexSource }> {
  let lastErr: unknown;
  for (const [k, source] of sources.entries()) {
    const more = k < sources.length - 1;
    try {
      const bytes = await source.fetchIndex(layer, info, opts);
      if (bytes.length === info.location.size || !more) return { bytes, source };
      opts.logger?.warn({ layer: layer.digest, source: source.name, bytes: bytes.length, expected: info.location.size }, "index has the wrong size; asking the next source");
    } catch (err) {
      if (opts.signal?.aborted || !more) throw err;
      lastErr = err;
      opts.logger?.warn({ layer: layer.digest, source: source.name, err: (err as Error).message }, "index not available; asking the next source");
    }
  }
  throw lastErr;
}

/** Decode and verify index bytes against the layer's annotation (`SHOAL_ERR_DIGEST_MISMATCH`, `SHOAL_ERR_BAD_INDEX`). */
export function decodeLayerIndex(bytes: Uint8Array, info: LazyLayerInfo, layer: string): LayerIndex {
  return decodeIndexMembers(bytes, info.location, { layer, expectedDigest: info.indexDigest });
}

/** An opened lazy image. */
export interface OpenedImage {
  ref: ImageReference;
  resolved: ResolvedImage;
  /** The lazy layers, bottom first. */
  layers: RemoteLayer[];
  /** Index bytes read from the registry (not from other sources). */
  registryIndexBytes: number;
}

/**
 * The lazy layers of `manifest` (of image `ref`), bottom first, each with
 * its index from `index(layer, info)`. Throws `NotConvertedError` when a
 * layer is not lazy.
 */
export async function lazyLayersOf(ref: ImageReference, manifest: ImageManifest, index: (layer: LayerRef, info: LazyLayerInfo) => Promise<LayerIndex>): Promise<RemoteLayer[]> {
  requireLazyLayers(manifest.layers, ref.toString());
  return (await layerSlotsOf(ref, manifest, index)) as RemoteLayer[];
}

/**
 * Every layer of `manifest`, bottom first: a `RemoteLayer` (with its index)
 * where the layer is lazy, or where it is an ordinary one and `seekable`
 * loads its seekable index (`kind: "seekable"`); undefined for an ordinary
 * one otherwise (an image built on a converted base, say). Throws
 * `LayerFormatError` for malformed shoal annotations.
 */
export async function layerSlotsOf(ref: ImageReference, manifest: ImageManifest, index: (layer: LayerRef, info: LazyLayerInfo) => Promise<LayerIndex>, seekable?: SeekableLoader): Promise<Array<RemoteLayer | undefined>> {
  return Promise.all(manifest.layers.map(async (d): Promise<RemoteLayer | undefined> => {
    const info = parseLazyAnnotations(d.annotations, d.digest);
    const layer: LayerRef = { registry: ref.registry, repository: ref.repository, digest: d.digest };
    if (!info) {
      if (!seekable) return undefined;
      const s = await seekable(layer, d);
      return { ...layer, index: s.index, indexDigest: s.indexDigest, kind: "seekable", ...(s.windows ? { windows: s.windows } : {}) };
    }
    return { ...layer, index: await index(layer, info), indexDigest: info.indexDigest, ...(info.sourceDigest ? { sourceDigest: info.sourceDigest } : {}) };
  }));
}

/**
 * "Pull" a lazy image: resolve its manifest at the registry, then load each
 * layer's index from `sources` in order; with `seekable`, an ordinary
 * layer's seekable index from those. No layer data is fetched.
 */
export async function openImage(
  clients: RegistryClients, ref: ImageReference, sources: readonly IndexSource[],
  opts: { platform?: Platform; signal?: AbortSignal; logger?: Logger; seekable?: readonly SeekableIndexSource[] } = {},
): Promise<OpenedImage> {
  const resolved = await clients.client(ref.registry).resolveImage(ref, opts);
  let registryIndexBytes = 0;
  const lazy = async (layer: LayerRef, info: LazyLayerInfo) => {
    const got = await fetchIndexBytes(sources, layer, info, opts);
    if (got.source.name === "origin") registryIndexBytes += got.bytes.length;
    return decodeLayerIndex(got.bytes, info, layer.digest);
  };
  const seekable = opts.seekable;
  const layers = seekable
    ? (await layerSlotsOf(ref, resolved.manifest, lazy, async (layer, desc) => {
      return fetchSeekableIndex(seekable, layer, desc, opts);
    })) as RemoteLayer[]
    : await lazyLayersOf(ref, resolved.manifest, lazy);
  return { ref, resolved, layers, registryIndexBytes };
}
