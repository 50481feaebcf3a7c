import { ShoalError } from "@shoal/base";
/**
 * Typed errors of the OCI package. All are `ShoalError`s with a stable
 * `code`. Messages name methods, registries, repositories and digests, never
 * credentials, tokens, `Authorization` values or URL query strings.
 */

/** The codes a `RegistryError` can carry. */
export type RegistryErrorCode =
  /** 401 after one authentication attempt, or a token request refused. */
  | "SHOAL_ERR_REGISTRY_UNAUTHORIZED"
  /** 403: authenticated but not allowed. */
  | "SHOAL_ERR_REGISTRY_DENIED"
  /** 404: manifest, blob or repository unknown. */
  | "SHOAL_ERR_REGISTRY_NOT_FOUND"
  /** A ranged GET was answered with the whole blob (200). */
  | "SHOAL_ERR_RANGE_NOT_SUPPORTED"
  /** 416, or the range runs past the end of the blob. */
  | "SHOAL_ERR_RANGE_NOT_SATISFIABLE"
  /** A manifest exceeded the size limit. */
  | "SHOAL_ERR_MANIFEST_TOO_LARGE"
  /** A blob read into memory exceeded the caller's size limit. */
  | "SHOAL_ERR_BLOB_TOO_LARGE"
  /** Network errors, 429 or 5xx persisted through every retry. */
  | "SHOAL_ERR_REGISTRY_UNAVAILABLE"
  /** Another 4xx: the registry refused the request (bad digest, bad manifest, ...). */
  | "SHOAL_ERR_REGISTRY_REJECTED"
  /** The registry answered something shoal cannot use (missing header, short body, ...). */
  | "SHOAL_ERR_REGISTRY_PROTOCOL";

/** One entry of a registry's `{"errors":[...]}` body. */
export interface RegistryErrorDetail {
  /** OCI error code, e.g. `MANIFEST_UNKNOWN`. */
  code: string;
  /** Human-readable message from the registry. */
  message: string;
}

/** Extra facts attached to a `RegistryError`. */
export interface RegistryErrorInit {
  /** HTTP status of the response that caused the error, if any. */
  status?: number;
  /** Error entries parsed from the registry's JSON body. */
  details?: RegistryErrorDetail[];
  /** Attempts made before giving up (for `SHOAL_ERR_REGISTRY_UNAVAILABLE`). */
  attempts?: number;
  /** Underlying error. */
  cause?: unknown;
}

/** A registry request failed. `code` says how; `status` and `details` say what the registry answered. */
export class RegistryError extends ShoalError {
  declare readonly code: RegistryErrorCode;
  readonly status: number | undefined;
  readonly details: RegistryErrorDetail[];
  readonly attempts: number | undefined;

  constructor(code: RegistryErrorCode, message: string, init: RegistryErrorInit = {}) {
    super(code, message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.details = init.details ?? [];
    this.attempts = init.attempts;
  }
}

/** A string is not a valid image reference, repository name, tag or digest. */
export class InvalidReferenceError extends ShoalError {
  readonly input: string;
  constructor(input: string, reason: string) {
    super("SHOAL_ERR_INVALID_REFERENCE", `invalid reference ${JSON.stringify(truncate(input, 300))}: ${reason}`);
    this.input = input;
  }
}

/** An index has no manifest for the wanted platform. `available` lists what it has. */
export class NoMatchingPlatformError extends ShoalError {
  readonly wanted: string;
  readonly available: string[];
  constructor(wanted: string, available: string[]) {
    super(
      "SHOAL_ERR_NO_MATCHING_PLATFORM",
      `no manifest for platform ${wanted}; available: ${available.length ? available.join(", ") : "(none)"}`,
    );
    this.wanted = wanted;
    this.available = available;
  }
}

/** A manifest's media type is not one shoal handles (schema1, artifacts, nested indexes...). */
export class UnsupportedManifestError extends ShoalError {
  readonly mediaType: string;
  constructor(mediaType: string, detail = "") {
    super("SHOAL_ERR_UNSUPPORTED_MANIFEST", `unsupported manifest media type ${JSON.stringify(mediaType)}${detail ? `: ${detail}` : ""}`);
    this.mediaType = mediaType;
  }
}

/** Manifest bytes are not a well-formed manifest or index of their media type. */
export class InvalidManifestError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_INVALID_MANIFEST", message, options);
  }
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}
