/**
 * OCI image manifests and indexes, and their Docker schema 2 equivalents,
 * parsed from bytes with their shape checked. The bytes stay the source of
 * truth for digests; the parsed objects are for reading.
 */
import { isDigest } from "@shoal/base";
import { InvalidManifestError, UnsupportedManifestError } from "./errors.ts";
import {
  isImageManifestMediaType,
  isIndexMediaType,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_DOCKER_SCHEMA1,
  MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  stripMediaTypeParameters,
  type ImageManifestMediaType,
  type IndexMediaType,
} from "./media-types.ts";
import type { Platform } from "./platform.ts";

/** A content descriptor: what, how big, and its digest. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  /** Size in bytes (a non-negative safe integer). */
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  /** Only in indexes: the platform of the manifest described. */
  platform?: Platform;
  artifactType?: string;
  /** Embedded content, base64. */
  data?: string;
}

/** An image manifest for one platform (OCI or Docker schema 2). */
export interface ImageManifest {
  schemaVersion: 2;
  /** Always set: from the document, else from the response's Content-Type. */
  mediaType: ImageManifestMediaType;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

/** An index of per-platform manifests (OCI index or Docker manifest list). */
export interface ImageIndex {
  schemaVersion: 2;
  /** Always set: from the document, else from the response's Content-Type. */
  mediaType: IndexMediaType;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  subject?: Descriptor;
  artifactType?: string;
}

/** Either kind of manifest. */
export type Manifest = ImageManifest | ImageIndex;

/** True when `m` is an index / manifest list. */
export function isIndex(m: Manifest): m is ImageIndex {
  return isIndexMediaType(m.mediaType);
}

/**
 * Parses and checks manifest bytes. The media type comes from the document's
 * `mediaType` field; else from `mediaTypeHeader` (a Content-Type, parameters
 * ignored) when that names a manifest type; else from the shape (`manifests`
 * → OCI index, `config` + `layers` → OCI manifest). A document type that
 * contradicts a manifest-type header is an error. Throws
 * `UnsupportedManifestError` for schema 1 and unknown types, and
 * `InvalidManifestError` for bytes that are not a manifest of their type.
 */
export function parseManifest(bytes: Uint8Array, mediaTypeHeader?: string): Manifest {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new InvalidManifestError("manifest is not valid UTF-8 JSON", { cause: err });
  }
  if (!isObject(doc)) throw new InvalidManifestError("manifest is not a JSON object");

  const header = stripMediaTypeParameters(mediaTypeHeader);
  const headerIsManifest = isIndexMediaType(header) || isImageManifestMediaType(header);
  if (header === MEDIA_TYPE_DOCKER_SCHEMA1 || header === MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED || doc["schemaVersion"] === 1) {
    throw new UnsupportedManifestError(header || MEDIA_TYPE_DOCKER_SCHEMA1, "Docker schema 1 is not supported");
  }
  let mediaType: string;
  if (doc["mediaType"] !== undefined) {
    if (typeof doc["mediaType"] !== "string") throw new InvalidManifestError("manifest mediaType is not a string");
    mediaType = doc["mediaType"];
    if (headerIsManifest && header !== mediaType) {
      throw new InvalidManifestError(`manifest mediaType ${JSON.stringify(mediaType)} contradicts Content-Type ${JSON.stringify(header)}`);
    }
  } else if (headerIsManifest) {
    mediaType = header;
  } else if (Array.isArray(doc["manifests"])) {
    mediaType = MEDIA_TYPE_OCI_INDEX;
  } else if (doc["config"] !== undefined && Array.isArray(doc["layers"])) {
    mediaType = MEDIA_TYPE_OCI_MANIFEST;
  } else {
    throw new UnsupportedManifestError(header || "(none)", "cannot tell what kind of manifest this is");
  }
  if (doc["schemaVersion"] !== 2) throw new InvalidManifestError(`${mediaType}: schemaVersion must be 2`);

  if (isIndexMediaType(mediaType)) return parseIndex(doc, mediaType);
  if (isImageManifestMediaType(mediaType)) return parseImageManifest(doc, mediaType);
  throw new UnsupportedManifestError(mediaType);
}

function parseIndex(doc: Record<string, unknown>, mediaType: IndexMediaType): ImageIndex {
  if (!Array.isArray(doc["manifests"])) throw new InvalidManifestError(`${mediaType}: manifests must be an array`);
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST && (doc["config"] !== undefined || doc["layers"] !== undefined)) {
    throw new InvalidManifestError(`${mediaType}: a manifest list has no config or layers`);
  }
  const index: ImageIndex = {
    schemaVersion: 2,
    mediaType,
    manifests: doc["manifests"].map((d, i) => parseDescriptor(d, `${mediaType}: manifests[${i}]`, true)),
  };
  copyOptional(doc, index, mediaType);
  return index;
}

function parseImageManifest(doc: Record<string, unknown>, mediaType: ImageManifestMediaType): ImageManifest {
  if (doc["manifests"] !== undefined) throw new InvalidManifestError(`${mediaType}: an image manifest has no manifests`);
  if (!Array.isArray(doc["layers"])) throw new InvalidManifestError(`${mediaType}: layers must be an array`);
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType,
    config: parseDescriptor(doc["config"], `${mediaType}: config`, false),
    layers: doc["layers"].map((d, i) => parseDescriptor(d, `${mediaType}: layers[${i}]`, false)),
  };
  if (mediaType === MEDIA_TYPE_DOCKER_MANIFEST && manifest.layers.some((l) => l.urls !== undefined && !l.mediaType.includes("foreign"))) {
    throw new InvalidManifestError(`${mediaType}: urls are only allowed on foreign layers`);
  }
  copyOptional(doc, manifest, mediaType);
  return manifest;
}

function copyOptional(doc: Record<string, unknown>, out: ImageIndex | ImageManifest, what: string): void {
  if (doc["annotations"] !== undefined) out.annotations = parseAnnotations(doc["annotations"], `${what}: annotations`);
  if (doc["subject"] !== undefined) out.subject = parseDescriptor(doc["subject"], `${what}: subject`, false);
  if (doc["artifactType"] !== undefined) out.artifactType = str(doc["artifactType"], `${what}: artifactType`);
}

/** Checks one descriptor's shape; `what` prefixes error messages. */
export function parseDescriptor(value: unknown, what: string, allowPlatform: boolean): Descriptor {
  if (!isObject(value)) throw new InvalidManifestError(`${what}: descriptor is not an object`);
  const digest = str(value["digest"], `${what}.digest`);
  if (!isDigest(digest)) throw new InvalidManifestError(`${what}.digest: not a valid digest`);
  const size = value["size"];
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < 0) {
    throw new InvalidManifestError(`${what}.size: must be a non-negative integer`);
  }
  const d: Descriptor = { mediaType: str(value["mediaType"], `${what}.mediaType`), digest, size };
  if (value["urls"] !== undefined) {
    if (!Array.isArray(value["urls"]) || value["urls"].some((u) => typeof u !== "string")) {
      throw new InvalidManifestError(`${what}.urls: must be an array of strings`);
    }
    d.urls = value["urls"] as string[];
  }
  if (value["annotations"] !== undefined) d.annotations = parseAnnotations(value["annotations"], `${what}.annotations`);
  if (value["artifactType"] !== undefined) d.artifactType = str(value["artifactType"], `${what}.artifactType`);
  if (value["data"] !== undefined) d.data = str(value["data"], `${what}.data`);
  if (value["platform"] !== undefined) {
    if (!allowPlatform) throw new InvalidManifestError(`${what}.platform: only index entries have a platform`);
    d.platform = parsePlatformField(value["platform"], `${what}.platform`);
  }
  return d;
}

function parsePlatformField(value: unknown, what: string): Platform {
  if (!isObject(value)) throw new InvalidManifestError(`${what}: not an object`);
  const p: Platform = { architecture: str(value["architecture"], `${what}.architecture`), os: str(value["os"], `${what}.os`) };
  if (value["variant"] !== undefined) p.variant = str(value["variant"], `${what}.variant`);
  if (value["os.version"] !== undefined) p["os.version"] = str(value["os.version"], `${what}.os.version`);
  if (value["os.features"] !== undefined) {
    const f = value["os.features"];
    if (!Array.isArray(f) || f.some((x) => typeof x !== "string")) throw new InvalidManifestError(`${what}.os.features: must be strings`);
    p["os.features"] = f as string[];
  }
  return p;
}

function parseAnnotations(value: unknown, what: string): Record<string, string> {
  if (!isObject(value) || Object.values(value).some((v) => typeof v !== "string")) {
    throw new InvalidManifestError(`${what}: must map strings to strings`);
  }
  return { ...(value as Record<string, string>) };
}

function str(value: unknown, what: string): string {
  if (typeof value !== "string") throw new InvalidManifestError(`${what}: must be a string`);
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

