/**
 * Writes OCI image layout directories (image-spec v1.1 "oci-layout",
 * index.json, blobs/sha256/...) from raw tar layers, for umoci and skopeo.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** Media types used by the layout writer. */
export const MediaTypes = {
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
} as const;

/** The annotation holding a tag in index.json. */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

/** Layer blob compression. */
export type LayerCompression = "gzip" | "none";

/** One layer to write: the uncompressed tar stream and how to store it. */
export interface LayerSpec {
  tar: Uint8Array;
  compression: LayerCompression;
  /** history[].created_by in the config. Default "shoal testkit layer N". */
  createdBy?: string;
  /** zlib level for "gzip" (default 6). Output is deterministic for a given zlib. */
  gzipLevel?: number;
  /** Descriptor annotations for this layer in the manifest. */
  annotations?: Record<string, string>;
}

/** Image config settings (everything else is fixed for determinism). */
export interface ImageConfigOptions {
  /** Default: the host's, from {@link ociArchitecture}. */
  architecture?: string;
  /** Default "linux". */
  os?: string;
  /** RFC 3339; default "2024-01-01T00:00:00Z". */
  created?: string;
  env?: string[];
  cmd?: string[];
  workingDir?: string;
}

/** Options of {@link writeImageLayout}. */
export interface WriteLayoutOptions {
  /** Tag recorded as org.opencontainers.image.ref.name. Default "latest". */
  tag?: string;
  config?: ImageConfigOptions;
  /** "oci" (default) or Docker v2 schema2 media types (umoci only unpacks "oci"). */
  manifestFormat?: "oci" | "docker";
  /** Manifest-level annotations (oci only). */
  annotations?: Record<string, string>;
  signal?: AbortSignal;
}

/** A layer as written: blob digest/size and the diffID of its tar. */
export interface LayerInfo {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  compression: LayerCompression;
}

/** Result of {@link writeImageLayout}. All digests are "sha256:<hex>". */
export interface LayoutImage {
  dir: string;
  tag: string;
  manifestDigest: string;
  manifestSize: number;
  manifestMediaType: string;
  configDigest: string;
  configSize: number;
  diffIds: string[];
  layers: LayerInfo[];
  /** The manifest bytes exactly as stored. */
  manifestBytes: Uint8Array;
  /** The config bytes exactly as stored. */
  configBytes: Uint8Array;
}

/** "sha256:<hex>" of `bytes`. */
export function sha256Digest(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Maps a Node `process.arch` value to the OCI/GOARCH architecture name. */
export function ociArchitecture(nodeArch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386", ppc64: "ppc64le",
    s390x: "s390x", riscv64: "riscv64", loong64: "loong64", mips: "mips", mipsel: "mipsle",
  };
  return map[nodeArch] ?? nodeArch;
}

/** Path of blob `digest` inside layout `dir`. */
export function layoutBlobPath(dir: string, digest: string): string {
  const [alg, hex] = digest.split(":");
  if (!alg || !hex) throw new Error(`bad digest ${digest}`);
  return join(dir, "blobs", alg, hex);
}

/** Reads blob `digest` from layout `dir` (not verified). */
export async function readLayoutBlob(dir: string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
  return new Uint8Array(await readFile(layoutBlobPath(dir, digest), { signal: opts.signal }));
}

/** Writes `bytes` as a blob of layout `dir` and returns its digest. */
export async function writeLayoutBlob(dir: string, bytes: Uint8Array, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const digest = sha256Digest(bytes);
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(layoutBlobPath(dir, digest), bytes, { signal: opts.signal });
  return digest;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

interface IndexJson {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
}

/**
 * Tags `manifest` (digest, size, media type) as `tag` in `dir`/index.json,
 * creating oci-layout/index.json if missing and replacing an existing entry
 * with the same tag.
 */
export async function tagManifest(dir: string, tag: string, manifest: { digest: string; size: number; mediaType: string }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  let index: IndexJson = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  try {
    index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as IndexJson;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME_ANNOTATION] !== tag);
  index.manifests.push({ ...manifest, annotations: { [REF_NAME_ANNOTATION]: tag } });
  await writeFile(join(dir, "index.json"), JSON.stringify(index));
}

/**
 * Writes an image (layers, config, manifest) into the OCI layout `dir`
 * (created if needed; other tags in an existing layout are kept) and tags it.
 * Layers are stored as given: "gzip" via node:zlib, "none" verbatim. The
 * config's rootfs.diff_ids are the sha256 of each uncompressed tar.
 */
export async function writeImageLayout(dir: string, layers: readonly LayerSpec[], opts: WriteLayoutOptions = {}): Promise<LayoutImage> {
  const tag = opts.tag ?? "latest";
  const docker = opts.manifestFormat === "docker";
  const signal = opts.signal;
  const infos: LayerInfo[] = [];
  for (const l of layers) {
    signal?.throwIfAborted();
    const blob = l.compression === "gzip" ? new Uint8Array(gzipSync(l.tar, { level: l.gzipLevel ?? 6 })) : l.tar;
    const digest = await writeLayoutBlob(dir, blob, { signal });
    const mediaType = docker
      ? (l.compression === "gzip" ? MediaTypes.dockerLayerGzip : MediaTypes.dockerLayer)
      : (l.compression === "gzip" ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer);
    infos.push({ digest, size: blob.length, mediaType, diffId: sha256Digest(l.tar), compression: l.compression });
  }
  const c = opts.config ?? {};
  const created = c.created ?? "2024-01-01T00:00:00Z";
  const config = {
    created,
    architecture: c.architecture ?? ociArchitecture(),
    os: c.os ?? "linux",
    config: {
      Env: c.env ?? ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      ...(c.cmd ? { Cmd: c.cmd } : {}),
      ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
    },
    rootfs: { type: "layers", diff_ids: infos.map((i) => i.diffId) },
    history: layers.map((l, i) => ({ created, created_by: l.createdBy ?? `shoal testkit layer ${i}` })),
  };
  const configBytes = utf8(JSON.stringify(config));
  const configDigest = await writeLayoutBlob(dir, configBytes, { signal });
  const manifestMediaType = docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
    layers: infos.map((i, n) => ({
      mediaType: i.mediaType, digest: i.digest, size: i.size,
      ...(layers[n]?.annotations ? { annotations: layers[n].annotations } : {}),
    })),
    ...(opts.annotations && !docker ? { annotations: opts.annotations } : {}),
  };
  const manifestBytes = utf8(JSON.stringify(manifest));
  const manifestDigest = await writeLayoutBlob(dir, manifestBytes, { signal });
  await tagManifest(dir, tag, { digest: manifestDigest, size: manifestBytes.length, mediaType: manifestMediaType });
  return {
    dir, tag, manifestDigest, manifestSize: manifestBytes.length, manifestMediaType,
    configDigest, configSize: configBytes.length, diffIds: infos.map((i) => i.diffId), layers: infos,
    manifestBytes, configBytes,
  };
}
