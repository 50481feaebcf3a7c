import { UnsupportedMediaTypeError } from "./errors.ts";

export const OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
export const OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar";
export const OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd";
export const DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip";
export const DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar";

/**
 * How a layer of `mediaType` is compressed. Throws
 * `UnsupportedMediaTypeError` for zstd (not supported yet) and for anything
 * that is not a tar layer.
 */
export function layerCompression(mediaType: string): "gzip" | "none" {
  switch (mediaType) {
    case OCI_LAYER_GZIP:
    case DOCKER_LAYER_GZIP:
      return "gzip";
    case OCI_LAYER_TAR:
    case DOCKER_LAYER_TAR:
      return "none";
    case OCI_LAYER_ZSTD:
    case "application/vnd.docker.image.rootfs.diff.tar.zstd":
      throw new UnsupportedMediaTypeError(mediaType, "zstd layers are not supported yet");
    default:
      throw new UnsupportedMediaTypeError(mediaType, "not a tar layer");
  }
}
