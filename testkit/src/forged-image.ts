/**
 * Images pushed byte by byte through the registry's HTTP API, for tests that
 * forge what no image builder would write: configs that are not JSON or name
 * other diffIDs, gzip that does not inflate. The registry checks only that
 * each blob hashes to its digest.
 */
import { createHash } from "node:crypto";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

/** `sha256:<hex>` of `bytes`. */
export function sha256DigestOf(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** Upload `bytes` as a blob of `repo` (one monolithic upload); resolves its digest. */
export async function putRawBlob(registryUrl: string, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256DigestOf(bytes);
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: "POST" });
  if (start.status !== 202) throw new Error(`starting an upload to ${repo}: HTTP ${start.status}`);
  const location = new URL(start.headers.get("location")!, registryUrl);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, { method: "PUT", body: bytes, headers: { "content-type": "application/octet-stream" } });
  if (put.status !== 201) throw new Error(`uploading ${digest} to ${repo}: HTTP ${put.status}`);
  return digest;
}

/** Push `repo:tag`: an OCI manifest of config `config` and one gzip layer `layer`, as given. */
export async function pushForgedImage(registryUrl: string, repo: string, tag: string, layer: Buffer, config: Buffer): Promise<{ layerDigest: string; configDigest: string }> {
  const configDigest = await putRawBlob(registryUrl, repo, config);
  const layerDigest = await putRawBlob(registryUrl, repo, layer);
  const manifest = {
    schemaVersion: 2, mediaType: OCI_MANIFEST,
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: layerDigest, size: layer.length }],
  };
  const res = await fetch(`${registryUrl}/v2/${repo}/manifests/${tag}`, { method: "PUT", headers: { "content-type": OCI_MANIFEST }, body: JSON.stringify(manifest) });
  if (res.status !== 201) throw new Error(`pushing the manifest of ${repo}:${tag}: HTTP ${res.status}`);
  return { layerDigest, configDigest };
}

/** A minimal config of one linux/amd64 image whose layers have `diffIds`. */
export function configFor(diffIds: string[]): Buffer {
  return Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: diffIds } }));
}
