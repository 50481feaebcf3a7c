import { LayerFormatError, NotConvertedError } from "./errors.ts";
import type { IndexLocation } from "./blob-layout.ts";

/** Prefix that makes containerd pass these annotations to snapshotters as labels. */
export const ANNOTATION_PREFIX = "containerd.io/snapshot/shoal.";
export const ANN_VERSION = `${ANNOTATION_PREFIX}version`;
export const ANN_INDEX_DIGEST = `${ANNOTATION_PREFIX}index.digest`;
export const ANN_INDEX_OFFSET = `${ANNOTATION_PREFIX}index.offset`;
export const ANN_INDEX_SIZE = `${ANNOTATION_PREFIX}index.size`;
export const ANN_CHUNK_SIZE = `${ANNOTATION_PREFIX}chunk-size`;
export const ANN_SOURCE_DIGEST = `${ANNOTATION_PREFIX}source.digest`;
/** Version of the lazy layer format these annotations describe. */
export const FORMAT_VERSION = "1";

/** What a converted layer's descriptor annotations say about its index. */
export interface LazyLayerInfo {
  indexDigest: string;
  location: IndexLocation;
  chunkSize: number;
  /** Digest of the layer this one was converted from, when recorded. */
  sourceDigest?: string;
}

/** Annotations to put on a converted layer's descriptor. */
export function lazyAnnotations(info: LazyLayerInfo): Record<string, string> {
  const out: Record<string, string> = {
    [ANN_VERSION]: FORMAT_VERSION,
    [ANN_INDEX_DIGEST]: info.indexDigest,
    [ANN_INDEX_OFFSET]: String(info.location.offset),
    [ANN_INDEX_SIZE]: String(info.location.size),
    [ANN_CHUNK_SIZE]: String(info.chunkSize),
  };
  if (info.sourceDigest) out[ANN_SOURCE_DIGEST] = info.sourceDigest;
  return out;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

/**
 * Parse a layer descriptor's annotations. Returns undefined when the layer
 * is not a shoal lazy layer; throws `LayerFormatError`
 * (`SHOAL_ERR_BAD_ANNOTATION`) when shoal annotations are present but
 * malformed or of another format version.
 */
export function parseLazyAnnotations(annotations: Readonly<Record<string, string>> | undefined, layer?: string): LazyLayerInfo | undefined {
  if (!annotations || !(ANN_INDEX_DIGEST in annotations || ANN_VERSION in annotations)) return undefined;
  const fail = (msg: string) => new LayerFormatError("SHOAL_ERR_BAD_ANNOTATION", msg, { layer });
  const version = annotations[ANN_VERSION];
  if (version !== FORMAT_VERSION) throw fail(`lazy layer format version ${JSON.stringify(version)} is not supported (expected ${FORMAT_VERSION})`);
  const digest = annotations[ANN_INDEX_DIGEST] ?? "";
  if (!DIGEST.test(digest)) throw fail(`bad ${ANN_INDEX_DIGEST}`);
  const num = (key: string) => {
    const v = annotations[key] ?? "";
    if (!DECIMAL.test(v)) throw fail(`bad ${key}`);
    return Number(v);
  };
  const source = annotations[ANN_SOURCE_DIGEST];
  return {
    indexDigest: digest,
    location: { offset: num(ANN_INDEX_OFFSET), size: num(ANN_INDEX_SIZE) },
    chunkSize: num(ANN_CHUNK_SIZE),
    ...(source && DIGEST.test(source) ? { sourceDigest: source } : {}),
  };
}

/**
 * The lazy-layer annotations of every layer of an image manifest, bottom
 * first. Throws `NotConvertedError` naming `image` and the first layer that
 * is not lazy, and `LayerFormatError` for malformed annotations.
 */
export function requireLazyLayers(layers: ReadonlyArray<{ digest: string; annotations?: Readonly<Record<string, string>> }>, image: string): LazyLayerInfo[] {
  return layers.map((d, i) => {
    const info = parseLazyAnnotations(d.annotations, d.digest);
    if (!info) throw new NotConvertedError(image, `layer ${i} (${d.digest}) has no shoal index`);
    return info;
  });
}
