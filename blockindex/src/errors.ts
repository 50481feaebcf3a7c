/**
 * Typed errors shared by every shoal package.
 *
 * Every error shoal raises on purpose is a `ShoalError`: it has a stable
 * `code` (`SHOAL_ERR_*`) that callers and edges (CLI exit messages, OCI
 * error codes, errno, gRPC codes) switch on, a `name` equal to its class
 * name, and an optional `cause`. Messages never contain credentials.
 */
export class ShoalError extends Error {
  /** Stable machine-readable code, e.g. `SHOAL_ERR_DIGEST_MISMATCH`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

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
  constructor(code: string, message: string, position: LayerPosition = {}, options?: { cause?: unknown }) {
    super(code, message + where(position), options);
    this.position = position;
  }
}

/** Bytes did not hash to the digest that authenticates them. */
export class DigestMismatchError extends ShoalError {
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super("SHOAL_ERR_DIGEST_MISMATCH", `${what}: digest mismatch: expected ${expected}, got ${actual}`);
    this.expected = expected;
    this.actual = actual;
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

/** Bad arguments from a caller (a flag, a size, a range). */
export class InvalidArgumentError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_INVALID_ARGUMENT", message, options);
  }
}
