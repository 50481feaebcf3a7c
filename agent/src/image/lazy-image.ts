import {
  decodeIndexMembers, LayerReader, MergedTree, parseLazyAnnotations,
  type LayerIndex, type LazyLayerInfo,
} from "@shoal/blockindex";
import type { Descriptor, ImageReference, Platform, RegistryClient, ResolvedImage } from "@shoal/oci";
import { NotConvertedError } from "../errors.ts";
import { RegistryChunkSource, type FetchStats } from "../fetch/registry-source.ts";

/** One layer of a lazy image: its descriptor, annotations and loaded index. */
export interface LazyLayer {
  descriptor: Descriptor;
  info: LazyLayerInfo;
  index: LayerIndex;
}

/** A lazy image opened through the registry: manifest, indexes, merged tree. */
export interface LazyImage {
  ref: ImageReference;
  resolved: ResolvedImage;
  layers: LazyLayer[];
  tree: MergedTree;
  /** A reader for layer `i` whose chunks come from the registry by range requests. */
  reader(i: number): LayerReader;
  /** Bytes and requests spent fetching indexes and chunks (manifests not counted). */
  stats: FetchStats;
}

/**
 * "Pull" a converted image: fetch its manifest and each layer's index with
 * one range request per layer (verified against the manifest's annotation),
 * and stack the layers. No layer data is fetched. Throws
 * `NotConvertedError` when a layer carries no shoal annotations.
 */
export async function openLazyImage(
  client: RegistryClient,
  ref: ImageReference,
  opts: { platform?: Platform; signal?: AbortSignal } = {},
): Promise<LazyImage> {
  const resolved = await client.resolveImage(ref, opts);
  const stats: FetchStats = { requests: 0, bytes: 0 };
  const infos = resolved.manifest.layers.map((d, i) => {
    const info = parseLazyAnnotations(d.annotations, d.digest);
    if (!info) throw new NotConvertedError(ref.toString(), `layer ${i} (${d.digest}) has no shoal index`);
    return info;
  });
  const layers = await Promise.all(
    resolved.manifest.layers.map(async (descriptor, i): Promise<LazyLayer> => {
      const info = infos[i]!;
      const bytes = await client.getBlobRange(ref.repository, descriptor.digest, info.location.offset, info.location.size, opts);
      stats.requests++;
      stats.bytes += bytes.length;
      const index = decodeIndexMembers(bytes, info.location, { layer: descriptor.digest, expectedDigest: info.indexDigest });
      return { descriptor, info, index };
    }),
  );
  const tree = MergedTree.build(layers.map((l) => l.index));
  return {
    ref,
    resolved,
    layers,
    tree,
    stats,
    reader(i) {
      const layer = layers[i]!;
      const source = new RegistryChunkSource({ client, stats }, { repository: ref.repository, digest: layer.descriptor.digest });
      return new LayerReader({ index: layer.index, source }, { layer: layer.descriptor.digest });
    },
  };
}
