import { ShoalError } from "@shoal/base";
import { decodeIndexMembers, parseLazyAnnotations, type LayerIndex, type LazyLayerInfo } from "@shoal/blockindex";
import { parseManifest, parseReference, type ImageManifest, type ImageReference } from "@shoal/oci";
import type { Logger } from "pino";
import { NotConvertedError } from "../errors.ts";
import type { RemoteLayer } from "../fetch/fetcher.ts";
import type { RegistryOrigin } from "../fetch/registry-origin.ts";
import type { KeyValue } from "./kv.ts";

/** An image the agent knows: its manifest digest and lazy layers, bottom first. */
export interface CatalogImage {
  ref: ImageReference;
  digest: string;
  layers: RemoteLayer[];
  /** Registry bytes spent on manifests and indexes by this load (0 when all came from the local catalog). */
  bytesFetched: number;
}

/** Where layer indexes come from before the registry (the supernodes, which read each from the registry once). */
export interface IndexSource {
  fetchIndex(layer: { registry: string; repository: string; digest: string }, indexDigest: string, opts: { signal?: AbortSignal }): Promise<Uint8Array>;
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
  private readonly origin: RegistryOrigin;
  private readonly indexSource: IndexSource | undefined;
  private readonly logger: Logger;
  private readonly indexes = new Map<string, LayerIndex>();

  constructor(components: { db: KeyValue; origin: RegistryOrigin; logger: Logger; indexSource?: IndexSource }) {
    this.db = components.db;
    this.origin = components.origin;
    this.indexSource = components.indexSource;
    this.logger = components.logger.child({ component: "catalog" });
  }

  /** A layer's index bytes: from the index source (the supernodes) when there is one, else (or when it fails) from the registry. */
  private async fetchIndex(ref: ImageReference, digest: string, info: LazyLayerInfo, opts: { signal?: AbortSignal }): Promise<{ bytes: Uint8Array; fromRegistry: boolean }> {
    if (this.indexSource) {
      try {
        const bytes = await this.indexSource.fetchIndex({ registry: ref.registry, repository: ref.repository, digest }, info.indexDigest, opts);
        if (bytes.length === info.location.size) return { bytes, fromRegistry: false };
        this.logger.warn({ layer: digest, bytes: bytes.length, expected: info.location.size }, "index from the supernode has the wrong size; reading it from the registry");
      } catch (err) {
        if (opts.signal?.aborted) throw err;
        this.logger.warn({ layer: digest, err: (err as Error).message }, "index not available from the supernodes; reading it from the registry");
      }
    }
    const bytes = await this.origin.client(ref.registry).getBlobRange(ref.repository, digest, info.location.offset, info.location.size, opts);
    return { bytes, fromRegistry: true };
  }

  /**
   * Load `refText`: by digest from the local catalog when known, else from
   * the registry (manifest, then one range request per layer index).
   * Throws `NotConvertedError` for images that are not lazy.
   */
  async load(refText: string, opts: { signal?: AbortSignal; offline?: boolean } = {}): Promise<CatalogImage> {
    const ref = parseReference(refText);
    let bytesFetched = 0;
    let digest = ref.digest;
    let manifest: ImageManifest | undefined;
    if (digest) manifest = await this.storedManifest(digest);
    if (!manifest) {
      if (opts.offline) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `image ${refText} is not in the local catalog`);
      const resolved = await this.origin.client(ref.registry).resolveImage(ref, opts);
      digest = resolved.digest;
      manifest = resolved.manifest;
      bytesFetched += resolved.bytes.length + (resolved.index?.bytes.length ?? 0);
      const stored: StoredImage = { ref: ref.toString(), manifest: Buffer.from(resolved.bytes).toString("utf8"), mediaType: resolved.mediaType };
      await this.db.put(`image!${digest}`, JSON.stringify(stored));
    }
    const layers: RemoteLayer[] = [];
    await Promise.all(
      manifest.layers.map(async (d, i) => {
        const info = parseLazyAnnotations(d.annotations, d.digest);
        if (!info) throw new NotConvertedError(ref.toString(), `layer ${i} (${d.digest}) has no shoal index`);
        let index = this.indexes.get(d.digest);
        if (!index) {
          const cached = await this.db.getBuffer(`index!${d.digest}`);
          let bytes: Uint8Array;
          if (cached) bytes = cached;
          else {
            if (opts.offline) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `index of ${d.digest} is not in the local catalog`);
            const got = await this.fetchIndex(ref, d.digest, info, opts);
            bytes = got.bytes;
            if (got.fromRegistry) bytesFetched += bytes.length;
          }
          index = decodeIndexMembers(bytes, info.location, { layer: d.digest, expectedDigest: info.indexDigest });
          if (!cached) await this.db.putBuffer(`index!${d.digest}`, bytes);
          this.indexes.set(d.digest, index);
        }
        layers[i] = { digest: d.digest, registry: ref.registry, repository: ref.repository, index, ...(info.sourceDigest ? { sourceDigest: info.sourceDigest } : {}) };
      }),
    );
    this.logger.debug({ image: ref.toString(), digest, layers: layers.length, bytesFetched }, "image loaded");
    return { ref, digest: digest!, layers, bytesFetched };
  }

  private async storedManifest(digest: string): Promise<ImageManifest | undefined> {
    const text = await this.db.get(`image!${digest}`);
    if (!text) return undefined;
    const stored = JSON.parse(text) as StoredImage;
    const m = parseManifest(Buffer.from(stored.manifest, "utf8"), stored.mediaType);
    return "layers" in m ? m : undefined;
  }
}
