/**
 * The labels containerd sends with a snapshot, parsed once at the edge
 * (stargz-snapshotter's rule): core code sees `SnapshotLabels`, never the map.
 */
import { BadRequestError, isSha256Digest } from "@shoal/base";
import { ANNOTATION_PREFIX, parseLazyAnnotations, type LazyLayerInfo } from "@shoal/blockindex";

/** The committed name a remote-snapshot `Prepare` asks for (the layer's chain ID). */
export const TARGET_LABEL = "containerd.io/snapshot.ref";
/** Labels containerd's CRI plugin (and `snapshotters.AppendInfoHandlerWrapper`) adds to each layer. */
export const CRI_IMAGE_REF = "containerd.io/snapshot/cri.image-ref";
export const CRI_LAYER_DIGEST = "containerd.io/snapshot/cri.layer-digest";
export const CRI_MANIFEST_DIGEST = "containerd.io/snapshot/cri.manifest-digest";
export const CRI_IMAGE_LAYERS = "containerd.io/snapshot/cri.image-layers";

/** containerd's limit on one label: key and value together, bytes. */
export const MAX_LABEL_BYTES = 4096;

/** Where a layer comes from, as CRI's labels say. */
export interface CriLayer {
  /** The image reference (`registry/repository:tag` or `@digest`). */
  imageRef: string;
  /** The layer blob's digest. */
  layerDigest: string;
  /** The image manifest's digest, when sent. */
  manifestDigest?: string;
  /** Digests of this layer and those above it, when sent (truncated by containerd). */
  imageLayers?: string[];
}

/** What a `Prepare` or `View` asks for, beyond the key and parent. */
export interface SnapshotLabels {
  /** Every label, kept on the snapshot. */
  all: Record<string, string>;
  /** A remote snapshot: the committed name containerd wants (`containerd.io/snapshot.ref`). */
  target?: string;
  /** The layer's shoal annotations, when it is a lazy layer. */
  lazy?: LazyLayerInfo;
  /** CRI's layer labels, when present (never required). */
  cri?: CriLayer;
}

/**
 * Parse `labels` (untrusted). Throws `BadRequestError` for labels over
 * containerd's size limit and for malformed shoal or CRI labels.
 */
export function parseLabels(labels: Readonly<Record<string, string>> | undefined): SnapshotLabels {
  const all: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (typeof k !== "string" || typeof v !== "string") throw new BadRequestError("labels must be strings");
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_BYTES) throw new BadRequestError(`label ${JSON.stringify(k.slice(0, 100))} is longer than ${MAX_LABEL_BYTES} bytes`);
    all[k] = v;
  }
  const out: SnapshotLabels = { all };
  const target = all[TARGET_LABEL];
  if (target !== undefined) {
    if (target === "") throw new BadRequestError(`${TARGET_LABEL} is empty`);
    out.target = target;
  }
  const shoal = Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(ANNOTATION_PREFIX)));
  if (Object.keys(shoal).length > 0) {
    try {
      const lazy = parseLazyAnnotations(shoal);
      if (lazy) out.lazy = lazy;
    } catch (err) {
      throw new BadRequestError(`shoal labels: ${(err as Error).message}`, { cause: err });
    }
  }
  const imageRef = all[CRI_IMAGE_REF];
  const layerDigest = all[CRI_LAYER_DIGEST];
  if (imageRef && layerDigest) {
    if (!isSha256Digest(layerDigest)) throw new BadRequestError(`${CRI_LAYER_DIGEST} is not a sha256 digest`);
    const manifestDigest = all[CRI_MANIFEST_DIGEST];
    const layers = all[CRI_IMAGE_LAYERS]?.split(",").filter(Boolean);
    out.cri = {
      imageRef, layerDigest,
      ...(manifestDigest && isSha256Digest(manifestDigest) ? { manifestDigest } : {}),
      ...(layers && layers.every(isSha256Digest) ? { imageLayers: layers } : {}),
    };
  }
  return out;
}
