/**
 * Typed errors of the lazy layer format. The error set itself (`ShoalError`,
 * its codes and their translations) lives in `@shoal/base`.
 */
import { ShoalError, type ErrorCode } from "@shoal/base";

/** Where in a layer a format error was found. Offsets are byte offsets. */
export interface LayerPosition {
  /** Layer digest or a caller-chosen label naming the layer. */
  layer?: string;
  /** Offset in the uncompressed tar stream, when known. */
  tarOffset?: number;
  /** Offset in the compressed blob, when known. */
  blobOffset?: number;
}

function where(pos: LayerPosition): string {
  const parts: string[] = [];
  if (pos.layer) parts.push(`layer ${pos.layer}`);
  if (pos.tarOffset !== undefined) parts.push(`tar offset ${pos.tarOffset}`);
  if (pos.blobOffset !== undefined) parts.push(`blob offset ${pos.blobOffset}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/**
 * A layer's bytes are not a valid tar / gzip / lazy-layer stream.
 * `code` tells which rule was broken; `position` where.
 */
export class LayerFormatError extends ShoalError {
  readonly position: LayerPosition;
  constructor(code: ErrorCode, message: string, position: LayerPosition = {}, options?: { cause?: unknown }) {
    super(code, message + where(position), options);
    this.position = position;
  }
}

/** A media type or compression shoal does not handle (yet). */
export class UnsupportedMediaTypeError extends ShoalError {
  readonly mediaType: string;
  constructor(mediaType: string, detail = "") {
    super("SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE", `unsupported layer media type ${mediaType}${detail ? `: ${detail}` : ""}`);
    this.mediaType = mediaType;
  }
}

/** A path is not in the (merged) image, or was whited out. */
export class NotFoundError extends ShoalError {
  readonly path: string;
  constructor(path: string, detail = "no such file or directory") {
    super("SHOAL_ERR_NOT_FOUND", `${path}: ${detail}`);
    this.path = path;
  }
}


/** An image, or one of its layers, is not a shoal lazy image: convert it first (`shoal convert`). */
export class NotConvertedError extends ShoalError {
  constructor(image: string, detail: string) {
    super("SHOAL_ERR_NOT_CONVERTED", `${image} is not a shoal lazy image (${detail}); convert it first: shoal convert ${image} DST`);
  }
}
