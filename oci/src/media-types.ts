/** Media types of OCI and Docker manifests, indexes and configs. */

/** OCI image manifest. */
export const MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
/** OCI image index (multi-platform). */
export const MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json";
/** Docker image manifest, schema 2. */
export const MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
/** Docker manifest list (multi-platform), schema 2. */
export const MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** Docker schema 1 manifest; recognised only to be refused. */
export const MEDIA_TYPE_DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json";
/** Signed Docker schema 1 manifest; recognised only to be refused. */
export const MEDIA_TYPE_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/** OCI image config. */
export const MEDIA_TYPE_OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
/** Docker image config. */
export const MEDIA_TYPE_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json";

// Layer media types live with the layer format: @shoal/blockindex (OCI_LAYER_GZIP, ...).

/** A media type of an image manifest (one platform). */
export type ImageManifestMediaType = typeof MEDIA_TYPE_OCI_MANIFEST | typeof MEDIA_TYPE_DOCKER_MANIFEST;
/** A media type of an index / manifest list. */
export type IndexMediaType = typeof MEDIA_TYPE_OCI_INDEX | typeof MEDIA_TYPE_DOCKER_MANIFEST_LIST;
/** Any manifest media type shoal reads. */
export type ManifestMediaType = ImageManifestMediaType | IndexMediaType;

/** The four manifest media types shoal reads, most preferred first (sent as `Accept`). */
export const MANIFEST_MEDIA_TYPES: readonly ManifestMediaType[] = [
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_DOCKER_MANIFEST,
];

/** True for the OCI index and Docker manifest list media types. */
export function isIndexMediaType(mediaType: string): mediaType is IndexMediaType {
  return mediaType === MEDIA_TYPE_OCI_INDEX || mediaType === MEDIA_TYPE_DOCKER_MANIFEST_LIST;
}

/** True for the OCI and Docker schema 2 image manifest media types. */
export function isImageManifestMediaType(mediaType: string): mediaType is ImageManifestMediaType {
  return mediaType === MEDIA_TYPE_OCI_MANIFEST || mediaType === MEDIA_TYPE_DOCKER_MANIFEST;
}

/** A `Content-Type` value without parameters, trimmed and lower-cased; `""` for none. */
export function stripMediaTypeParameters(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}
