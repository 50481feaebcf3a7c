/** Converting an image in a registry into a lazy image, pushed beside it. */
import { DigestMismatchError, InvalidArgumentError, ShoalError } from "@shoal/base";
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { ANNOTATION_PREFIX, convertLayer, DEFAULT_CHUNK_SIZE, DOCKER_LAYER_GZIP, layerCompression, lazyAnnotations, OCI_LAYER_GZIP, parseLazyAnnotations } from "@shoal/blockindex";
import { isIndex, type Descriptor, type FetchedManifest, type ImageIndex, type ImageManifest, type ImageReference, type RegistryClient, UnsupportedManifestError } from "@shoal/oci";
import type { StartupOrder } from "@shoal/blockindex";

/** A progress line a conversion reports each layer to as it goes. */
export interface Progress {
  /** Set the done/total counts (bytes); `total` 0 means unknown. */
  update(done: number, total: number): void;
  /** Finish the line with a closing note. */
  done(note: string): void;
}

/** One side of a conversion: a client for the registry and the image reference in it. */
export interface ImageEndpoint {
  client: RegistryClient;
  ref: ImageReference;
}

/** Settings for `convertImage`. */
export interface ConvertImageInit {
  chunkSize?: number;
  /** Directory remembering which source layers were converted to what; default none. */
  cacheDir?: string;
  /** Where converted blobs are staged before upload; default the OS temp dir. */
  tmpDir?: string;
  /** Startup chunks to embed into the converted layers' indexes (its chunk size must be the conversion's). */
  startupOrder?: StartupOrder;
  /** A progress line for each layer (`label` names it). */
  progress?: (label: string) => Progress;
  signal?: AbortSignal;
}

/** What `convertImage` pushed. */
export interface ConvertImageResult {
  digest: string;
  mediaType: string;
  size: number;
  /** Layers converted now, and layers found already converted. */
  converted: number;
  reused: number;
}

interface CachedLayer {
  digest: string;
  size: number;
  annotations: Record<string, string>;
  /** Where the lazy blob was pushed (`registry/repository`), to mount it from on that registry. */
  pushedTo?: string;
}

const silent: Progress = { update() {}, done() {} };

/**
 * Convert image `src` (a manifest, or an index: every platform) into a lazy
 * image pushed to `dst`: every tar layer becomes a lazy layer (same diffID)
 * annotated with where its index is; the config is copied unchanged, so the
 * image ID and chain IDs stay the same. Layers that are already lazy, or that
 * the cache says were converted before and `dst` still holds, are not
 * converted again. Returns the digest of the manifest (or index) pushed,
 * tagged as `dst.ref.tag`.
 */
export async function convertImage(src: ImageEndpoint, dst: ImageEndpoint, init: ConvertImageInit = {}): Promise<ConvertImageResult> {
  const job = new ConversionJob(src, dst, init);
  const top = await src.client.getManifest(src.ref, { signal: init.signal });
  const tag = dst.ref.tag ?? "latest";
  const pushed = isIndex(top.manifest)
    ? await job.convertIndex(top as FetchedManifest<ImageIndex>, tag)
    : await job.convertManifest(top as FetchedManifest<ImageManifest>, tag);
  return { ...pushed, converted: job.converted, reused: job.reused };
}

class ConversionJob {
  converted = 0;
  reused = 0;
  private readonly src: ImageEndpoint;
  private readonly dst: ImageEndpoint;
  private readonly init: ConvertImageInit;
  private readonly chunkSize: number;

  constructor(src: ImageEndpoint, dst: ImageEndpoint, init: ConvertImageInit) {
    this.src = src;
    this.dst = dst;
    this.init = init;
    this.chunkSize = init.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (init.startupOrder && init.startupOrder.chunkSize !== this.chunkSize) {
      throw new InvalidArgumentError(`the startup order was recorded with ${init.startupOrder.chunkSize}-byte chunks, but this conversion uses ${this.chunkSize}; pass --chunk-size ${init.startupOrder.chunkSize}`);
    }
  }

  private get opts() {
    return { signal: this.init.signal };
  }

  async convertIndex(fetched: FetchedManifest<ImageIndex>, tag: string): Promise<{ digest: string; mediaType: string; size: number }> {
    const doc = JSON.parse(Buffer.from(fetched.bytes).toString("utf8")) as { manifests: Descriptor[] };
    const manifests: Descriptor[] = [];
    for (const d of fetched.manifest.manifests) {
      const child = await this.src.client.getManifest({ repository: this.src.ref.repository, digest: d.digest }, this.opts);
      if (isIndex(child.manifest)) throw new UnsupportedManifestError(child.mediaType, `nested index ${d.digest} in ${this.src.ref.toString()}`);
      const out = await this.convertManifest(child as FetchedManifest<ImageManifest>, undefined);
      manifests.push({ ...d, digest: out.digest, size: out.size, mediaType: out.mediaType });
    }
    doc.manifests = manifests;
    return this.pushManifest(Buffer.from(JSON.stringify(doc, null, 2)), fetched.mediaType, tag);
  }

  async convertManifest(fetched: FetchedManifest<ImageManifest>, tag: string | undefined): Promise<{ digest: string; mediaType: string; size: number }> {
    const m = fetched.manifest;
    const doc = JSON.parse(Buffer.from(fetched.bytes).toString("utf8")) as { layers: Descriptor[] };
    // a lazy image must not claim diffIDs its layers do not have: the config is read (once) when a
    // layer is converted; layers converted before were checked then, and need no download now
    let diffIds: Promise<string[]> | undefined;
    await this.copyBlob(m.config);
    const docker = m.mediaType.startsWith("application/vnd.docker.");
    const layers: Descriptor[] = [];
    for (const [i, layer] of m.layers.entries()) {
      const label = `layer ${i + 1}/${m.layers.length} ${layer.digest.slice(7, 19)}`;
      layers.push(await this.convertLayer(layer, docker, label, async () => (await (diffIds ??= this.diffIds(m)))[i]!));
    }
    doc.layers = layers;
    const bytes = Buffer.from(JSON.stringify(doc, null, 2));
    return this.pushManifest(bytes, fetched.mediaType, tag);
  }

  /** The config's `rootfs.diff_ids`: its bytes verified against its digest, parsed as JSON, one sha256 digest per layer. */
  private async diffIds(m: ImageManifest): Promise<string[]> {
    const what = `config ${m.config.digest} of ${this.src.ref.toString()}`;
    const bytes = await this.src.client.getBlob(this.src.ref.repository, m.config.digest, this.opts);
    let config: unknown;
    try {
      config = JSON.parse(Buffer.from(bytes).toString("utf8"));
    } catch {
      throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `${what} is not JSON`);
    }
    const ids = (config as { rootfs?: { diff_ids?: unknown } } | null)?.rootfs?.diff_ids;
    if (!Array.isArray(ids) || ids.length !== m.layers.length || !ids.every((d) => typeof d === "string" && /^sha256:[0-9a-f]{64}$/.test(d))) {
      throw new ShoalError("SHOAL_ERR_BAD_CONFIG", `${what}: rootfs.diff_ids does not list one sha256 digest for each of the ${m.layers.length} layers`);
    }
    return ids as string[];
  }

  private async pushManifest(bytes: Buffer, mediaType: string, tag: string | undefined) {
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    await this.dst.client.putManifest(this.dst.ref.repository, tag ?? digest, bytes, mediaType, this.opts);
    return { digest, mediaType, size: bytes.length };
  }

  private async convertLayer(layer: Descriptor, docker: boolean, label: string, diffIdOf: () => Promise<string>): Promise<Descriptor> {
    const progress = this.init.progress?.(label) ?? silent;
    if (parseLazyAnnotations(layer.annotations, layer.digest)) {
      await this.copyBlob(layer);
      this.reused++;
      progress.done("already lazy, copied");
      return layer;
    }
    layerCompression(layer.mediaType); // unsupported media types fail before any download
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(layer.annotations ?? {})) if (!k.startsWith(ANNOTATION_PREFIX)) base[k] = v;
    const mediaType = docker ? DOCKER_LAYER_GZIP : OCI_LAYER_GZIP;
    const prefetch = this.init.startupOrder?.layers[layer.digest] ?? [];
    const cacheKey = prefetch.length ? `${layer.digest}-${createHash("sha256").update(prefetch.join(",")).digest("hex").slice(0, 16)}` : layer.digest;
    const cached = await this.readCache(cacheKey);
    if (cached && (await this.lazyBlobPresent(cached))) {
      this.reused++;
      progress.done(`converted before: ${cached.digest}`);
      return { mediaType, digest: cached.digest, size: cached.size, annotations: { ...base, ...cached.annotations } };
    }
    const diffId = await diffIdOf();
    const dir = await mkdtemp(join(this.init.tmpDir ?? tmpdir(), "shoal-convert-"));
    const file = join(dir, "layer");
    const out = createWriteStream(file);
    // a write failing (disk full) or one after the conversion gave up must not go unhandled
    let outError: Error | undefined;
    out.on("error", (err) => (outError ??= err));
    try {
      const blob = await this.src.client.openBlob(this.src.ref.repository, layer.digest, this.opts);
      const result = await convertLayer(blob.body, layer.mediaType, async (b) => {
        if (outError) throw outError;
        if (!out.write(b)) await once(out, "drain");
      }, {
        chunkSize: this.chunkSize,
        prefetch,
        layer: layer.digest,
        signal: this.init.signal,
        onProgress: (n) => progress.update(n, layer.size),
      });
      out.end();
      await once(out, "finish");
      if (outError) throw outError;
      if (result.diffID !== diffId) throw new DigestMismatchError(`${label} of ${this.src.ref.toString()}, uncompressed (the config's diff_ids)`, diffId, result.diffID);
      await this.dst.client.pushBlob(this.dst.ref.repository, result.digest, result.size, { path: file }, this.opts);
      const annotations = lazyAnnotations({ indexDigest: result.indexDigest, location: result.indexLocation, chunkSize: this.chunkSize, sourceDigest: layer.digest });
      await this.writeCache(cacheKey, { digest: result.digest, size: result.size, annotations, pushedTo: `${this.dst.ref.registry}/${this.dst.ref.repository}` });
      this.converted++;
      progress.done(`converted: ${result.index.entries.length} entries, ${result.index.chunkCount} chunks${prefetch.length ? `, ${result.index.prefetch.length} startup chunks` : ""}, ${result.digest}`);
      return { mediaType, digest: result.digest, size: result.size, annotations: { ...base, ...annotations } };
    } finally {
      out.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * True when the lazy blob of a cached conversion is in the destination
   * repository, or could be mounted there from a repository of the same
   * registry that has it (where it was pushed, or the source repository).
   */
  private async lazyBlobPresent(cached: CachedLayer): Promise<boolean> {
    const dst = this.dst.client;
    if (await dst.headBlob(this.dst.ref.repository, cached.digest, this.opts)) return true;
    const froms = new Set<string>();
    const prefix = `${this.dst.ref.registry}/`;
    if (cached.pushedTo?.startsWith(prefix)) froms.add(cached.pushedTo.slice(prefix.length));
    if (this.src.ref.registry === this.dst.ref.registry) froms.add(this.src.ref.repository);
    froms.delete(this.dst.ref.repository);
    for (const from of froms) if (await this.tryMount(cached.digest, from)) return true;
    return false;
  }

  /** Mount `digest` from repository `from` into the destination; false when the registry would not (or refused the request). */
  private async tryMount(digest: string, from: string): Promise<boolean> {
    try {
      return await this.dst.client.mountBlob(this.dst.ref.repository, digest, from, this.opts);
    } catch (err) {
      if (this.init.signal?.aborted) throw err;
      return false;
    }
  }

  /** Make `d` present in the destination repository (mount when on the same registry, else copy). */
  private async copyBlob(d: Descriptor): Promise<void> {
    const dst = this.dst.client;
    if (await dst.headBlob(this.dst.ref.repository, d.digest, this.opts)) return;
    const sameRegistry = this.src.ref.registry === this.dst.ref.registry;
    // On one registry a mount needs no bytes at all: try it before downloading.
    if (sameRegistry && (await this.tryMount(d.digest, this.src.ref.repository))) return;
    const dir = await mkdtemp(join(this.init.tmpDir ?? tmpdir(), "shoal-copy-"));
    try {
      const file = join(dir, "blob");
      const blob = await this.src.client.openBlob(this.src.ref.repository, d.digest, this.opts);
      const out = createWriteStream(file);
      for await (const piece of blob.body) if (!out.write(piece)) await once(out, "drain");
      out.end();
      await once(out, "finish");
      await dst.pushBlob(this.dst.ref.repository, d.digest, d.size, { path: file }, {
        ...this.opts,
        ...(sameRegistry ? { mountFrom: this.src.ref.repository } : {}),
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private cacheFile(key: string): string | undefined {
    if (!this.init.cacheDir) return undefined;
    return join(this.init.cacheDir, `${key.replace(":", "-")}-${this.chunkSize}.json`);
  }

  private async readCache(sourceDigest: string): Promise<CachedLayer | undefined> {
    const file = this.cacheFile(sourceDigest);
    if (!file) return undefined;
    try {
      const c = JSON.parse(await readFile(file, "utf8")) as CachedLayer;
      return parseLazyAnnotations(c.annotations) ? c : undefined;
    } catch {
      return undefined;
    }
  }

  private async writeCache(sourceDigest: string, c: CachedLayer): Promise<void> {
    const file = this.cacheFile(sourceDigest);
    if (!file) return;
    await mkdir(this.init.cacheDir!, { recursive: true });
    await writeFile(`${file}.tmp`, JSON.stringify(c));
    await rename(`${file}.tmp`, file);
  }
}
