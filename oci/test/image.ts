/** Test helper: builds small images (config + random layers) and pushes them with a RegistryClient. */
import { expect } from "vitest";
import { createHash, randomBytes } from "node:crypto";
import { OCI_LAYER_GZIP } from "@shoal/blockindex";
import { MEDIA_TYPE_OCI_CONFIG, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type Descriptor, type Platform, type RegistryClient } from "../src/index.ts";

export interface Blob {
  bytes: Uint8Array;
  digest: string;
  size: number;
}

export function blobOf(bytes: Uint8Array): Blob {
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, size: bytes.length };
}

export function randomBlob(size: number): Blob {
  return blobOf(randomBytes(size));
}

export function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}

export interface PushedImage {
  digest: string;
  bytes: Uint8Array;
  config: Blob;
  layers: Blob[];
  descriptor: Descriptor;
}

/** Pushes a one-platform image (config + layers) and its manifest under `tag` (if given, else by digest). */
export async function pushImage(client: RegistryClient, repo: string, platform: Platform, opts: { tag?: string; layerSizes?: number[]; mediaType?: string } = {}): Promise<PushedImage> {
  const layers = (opts.layerSizes ?? [1000, 2000]).map(randomBlob);
  const config = blobOf(json({ architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}), rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) } }));
  for (const b of [config, ...layers]) await client.pushBlob(repo, b.digest, b.size, b.bytes);
  const mediaType = opts.mediaType ?? MEDIA_TYPE_OCI_MANIFEST;
  const bytes = json({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: MEDIA_TYPE_OCI_CONFIG, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: OCI_LAYER_GZIP, digest: l.digest, size: l.size })),
  });
  const digest = blobOf(bytes).digest;
  expect(await client.putManifest(repo, opts.tag ?? digest, bytes, mediaType)).toBe(digest);
  return { digest, bytes, config, layers, descriptor: { mediaType, digest, size: bytes.length, platform } };
}

/** Pushes an index over `images` under `tag`. */
export async function pushIndex(client: RegistryClient, repo: string, tag: string, images: PushedImage[]): Promise<{ digest: string; bytes: Uint8Array }> {
  const bytes = json({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: images.map((i) => i.descriptor) });
  const digest = await client.putManifest(repo, tag, bytes, MEDIA_TYPE_OCI_INDEX);
  return { digest, bytes };
}
