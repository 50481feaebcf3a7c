/**
 * The one error set of shoal.
 *
 * Every error shoal raises on purpose is a `ShoalError` whose `code` is one
 * of `ERROR_CODES`: a closed set, so that a caller can switch on it and an
 * edge can translate it. Each code has a `kind`; each edge (HTTP status of
 * the agent and supernode APIs, FUSE errno, gRPC status of the snapshotter,
 * OCI error code of the registry mirror) translates kinds through its one
 * table below, with a per-code override where a code needs another answer.
 * The CLI prints `shoal: <message> [<code>]` and exits 1.
 *
 * Messages never contain credentials.
 */

/** What went wrong, in the terms every edge translates from. */
export type ErrorKind =
  /** The caller's input is malformed (flag, argument, request field). */
  | "invalid"
  /** The caller is not authenticated. */
  | "unauthorized"
  /** The caller is authenticated but not allowed. */
  | "denied"
  /** The thing named does not exist. */
  | "not-found"
  /** The thing to create exists already. */
  | "exists"
  /** The thing is in use, or in a state that forbids the operation. */
  | "conflict"
  /** A range lies outside the thing it addresses. */
  | "range"
  /** Content is not well-formed (a tar, a gzip member, an index, a key file). */
  | "malformed"
  /** Content is well-formed but not what the operation needs (an image not converted). */
  | "precondition"
  /** Valid input shoal does not handle (yet). */
  | "unsupported"
  /** Bytes did not hash to the digest that authenticates them. */
  | "corrupt"
  /** A service shoal depends on (a registry, a supernode, a peer) failed or answered nonsense. */
  | "upstream"
  /** This service, or every source of something, is not available now; try again later. */
  | "unavailable"
  /** The local disk is full. */
  | "no-space"
  /** The operating system refused an operation (mount, unmount). */
  | "system"
  /** The operation was cancelled by its caller, or by a shutdown. */
  | "cancelled"
  /** A bug: an error nobody expected. */
  | "internal";

/** What a code means and how edges translate it when its kind's answer does not fit. */
export interface ErrorInfo {
  kind: ErrorKind;
  /** One line: when this code is raised. */
  summary: string;
  /** HTTP status instead of the kind's. */
  http?: number;
}

/** Every error code shoal raises. Adding one means choosing its kind here. */
export const ERROR_CODES = {
  // caller input
  SHOAL_ERR_INVALID_ARGUMENT: { kind: "invalid", summary: "a flag, setting, argument or API field is malformed" },
  SHOAL_ERR_BAD_REQUEST: { kind: "invalid", summary: "a request from a remote caller does not parse (path, query, body, header)" },
  SHOAL_ERR_BODY_TOO_LARGE: { kind: "invalid", summary: "a request body is larger than the endpoint takes (413)", http: 413 },
  SHOAL_ERR_INVALID_REFERENCE: { kind: "invalid", summary: "not a valid image reference, repository, tag or digest" },
  SHOAL_ERR_SWARM_KEY: { kind: "invalid", summary: "a swarm key file or value is malformed" },
  SHOAL_ERR_NO_MOUNTPOINT: { kind: "invalid", summary: "a mountpoint does not exist or is not a directory" },
  SHOAL_ERR_PARENT_NOT_COMMITTED: { kind: "invalid", summary: "a snapshot's parent is active or a view, not committed" },
  SHOAL_ERR_SYMLINK_LOOP: { kind: "invalid", summary: "too many levels of symbolic links in an image path" },
  // not found, exists, conflict
  SHOAL_ERR_NOT_FOUND: { kind: "not-found", summary: "no such path in the image, route or object" },
  SHOAL_ERR_REGISTRY_NOT_FOUND: { kind: "not-found", summary: "the registry has no such manifest, blob or repository (404)" },
  SHOAL_ERR_PREHEAT_NOT_FOUND: { kind: "not-found", summary: "no preheat job with that id" },
  SHOAL_ERR_PEER_NOT_FOUND: { kind: "not-found", summary: "a peer does not hold the chunk asked for" },
  SHOAL_ERR_NOT_MOUNTED: { kind: "not-found", summary: "a path is not a shoal mount" },
  SHOAL_ERR_NO_MATCHING_PLATFORM: { kind: "not-found", summary: "an index has no manifest for the wanted platform" },
  SHOAL_ERR_ALREADY_MOUNTED: { kind: "exists", summary: "a mountpoint is already a mountpoint" },
  SHOAL_ERR_SNAPSHOT_EXISTS: { kind: "exists", summary: "a snapshot key or name is taken (for a remote snapshot: its target exists)" },
  SHOAL_ERR_SNAPSHOT_IN_USE: { kind: "conflict", summary: "a snapshot has children or is mounted, and cannot be removed" },
  SHOAL_ERR_BUSY: { kind: "conflict", summary: "a mount is in use and cannot be unmounted" },
  SHOAL_ERR_ROOT_IN_USE: { kind: "conflict", summary: "another daemon runs on the same state directory (--root)" },
  SHOAL_ERR_MOUNTPOINT_NOT_EMPTY: { kind: "conflict", summary: "a mountpoint is not empty and covering it was not asked for (--force)" },
  SHOAL_ERR_ALREADY_RUNNING: { kind: "exists", summary: "another process already serves that socket (an agent, a FUSE keeper)" },
  // access
  SHOAL_ERR_REGISTRY_UNAUTHORIZED: { kind: "unauthorized", summary: "the registry refused the credentials, or there were none (401)" },
  SHOAL_ERR_REGISTRY_DENIED: { kind: "denied", summary: "the registry denied an authenticated caller (403)" },
  SHOAL_ERR_REGISTRY_NOT_ALLOWED: { kind: "denied", summary: "the registry is not on the allow list of the supernode (--registries) or the mirror (--mirror-registries)" },
  SHOAL_ERR_NOT_SWARM_MEMBER: { kind: "denied", summary: "a tracker announce or report is not signed by the peer it names, lacks the swarm key's membership proof, or is stale" },
  SHOAL_ERR_PAGE_TOKEN: { kind: "unauthorized", summary: "a request for the agent's status page data lacks the agent's page token (ROOT/web.token), or carries another" },
  SHOAL_ERR_MOUNTPOINT_REFUSED: { kind: "denied", summary: "a mountpoint is a system directory, the agent's root, or inside or above a shoal mount" },
  // ranges
  SHOAL_ERR_RANGE_NOT_SATISFIABLE: { kind: "range", summary: "a byte range lies outside the blob (416)" },
  SHOAL_ERR_CHUNK_RANGE: { kind: "range", summary: "a chunk range lies outside the layer's index" },
  // content
  SHOAL_ERR_TAR_TRUNCATED: { kind: "malformed", summary: "a tar stream ends inside a header or an entry" },
  SHOAL_ERR_TAR_CHECKSUM: { kind: "malformed", summary: "a tar header fails its checksum" },
  SHOAL_ERR_TAR_BAD_NUMBER: { kind: "malformed", summary: "a tar header field is not a number" },
  SHOAL_ERR_TAR_BAD_PAX: { kind: "malformed", summary: "a pax extended header is malformed" },
  SHOAL_ERR_TAR_BAD_PATH: { kind: "malformed", summary: "a tar entry's path is absolute, escapes the root, or is empty" },
  SHOAL_ERR_TAR_META_TOO_LARGE: { kind: "malformed", summary: "a tar entry's metadata (pax, long name) is larger than shoal reads" },
  SHOAL_ERR_TAR_UNSUPPORTED: { kind: "unsupported", summary: "a tar entry type shoal does not handle" },
  SHOAL_ERR_GZIP_CORRUPT: { kind: "malformed", summary: "a gzip stream is corrupt" },
  SHOAL_ERR_BAD_CHUNK: { kind: "malformed", summary: "a verified chunk does not inflate to its recorded length" },
  SHOAL_ERR_BAD_INDEX: { kind: "malformed", summary: "a lazy layer's index or footer does not decode", http: 502 },
  SHOAL_ERR_BAD_ANNOTATION: { kind: "malformed", summary: "a layer's shoal annotations are malformed" },
  SHOAL_ERR_INVALID_MANIFEST: { kind: "malformed", summary: "manifest bytes are not a well-formed manifest or index" },
  SHOAL_ERR_PEER_KEY: { kind: "malformed", summary: "a peer key file exists but does not decode" },
  SHOAL_ERR_SNAPSHOT_KIND: { kind: "precondition", summary: "a snapshot is of the wrong kind for the operation (a commit of a view, the mounts of a committed one)" },
  SHOAL_ERR_NOT_CONVERTED: { kind: "precondition", summary: "an image or layer is not a shoal lazy image: convert it first" },
  SHOAL_ERR_UNSUPPORTED: { kind: "unsupported", summary: "a valid image shoal cannot serve (e.g. layers of different chunk sizes)" },
  SHOAL_ERR_NO_BLOCK_MODE: { kind: "unsupported", summary: "the kernel cannot mount erofs from a file (block mode); layers are served per file over FUSE" },
  SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE: { kind: "unsupported", summary: "a layer media type or compression shoal does not handle" },
  SHOAL_ERR_UNSUPPORTED_MANIFEST: { kind: "unsupported", summary: "a manifest media type shoal does not handle (schema 1, artifacts)" },
  SHOAL_ERR_DIGEST_MISMATCH: { kind: "corrupt", summary: "bytes did not hash to the digest that authenticates them" },
  SHOAL_ERR_BAD_CONFIG: { kind: "malformed", summary: "an image config is not JSON, or its rootfs.diff_ids do not list one digest per layer" },
  // services shoal depends on
  SHOAL_ERR_REGISTRY_UNAVAILABLE: { kind: "upstream", summary: "the registry failed (network, 429, 5xx) through every retry" },
  SHOAL_ERR_REGISTRY_REJECTED: { kind: "upstream", summary: "the registry refused a request with another 4xx" },
  SHOAL_ERR_REGISTRY_PROTOCOL: { kind: "upstream", summary: "the registry answered something shoal cannot use" },
  SHOAL_ERR_RANGE_NOT_SUPPORTED: { kind: "upstream", summary: "the registry answered a range request with the whole blob" },
  SHOAL_ERR_MANIFEST_TOO_LARGE: { kind: "upstream", summary: "a manifest exceeded the size limit" },
  SHOAL_ERR_BLOB_TOO_LARGE: { kind: "upstream", summary: "a blob read into memory exceeded the size limit" },
  SHOAL_ERR_SUPERNODE_REJECTED: { kind: "upstream", summary: "a supernode refused a request (4xx)" },
  SHOAL_ERR_SUPERNODE_PROTOCOL: { kind: "upstream", summary: "a supernode answered something shoal cannot use" },
  SHOAL_ERR_PREHEAT_FAILED: { kind: "upstream", summary: "a preheat job failed on a supernode" },
  SHOAL_ERR_PEER_PROTOCOL: { kind: "upstream", summary: "a peer broke the chunk protocol" },
  SHOAL_ERR_CONTAINERD: { kind: "upstream", summary: "containerd (or a snapshotter through it) refused a call" },
  SHOAL_ERR_AGENT_PROTOCOL: { kind: "upstream", summary: "the agent answered something the client cannot use" },
  // not available now
  SHOAL_ERR_SUPERNODE_UNAVAILABLE: { kind: "unavailable", summary: "no supernode could be reached, or one answered 5xx" },
  SHOAL_ERR_PEER_UNAVAILABLE: { kind: "unavailable", summary: "a peer could not be reached or the transfer broke off" },
  SHOAL_ERR_PEER_BUSY: { kind: "unavailable", summary: "a peer is at its upload cap" },
  SHOAL_ERR_TOO_MANY_REPORTS: { kind: "unavailable", summary: "a swarm member reports peers more often than the tracker takes (429)", http: 429 },
  SHOAL_ERR_TOO_MANY_JOBS: { kind: "unavailable", summary: "a supernode runs as many preheat jobs as it takes; try again later (429)", http: 429 },
  SHOAL_ERR_FETCH_FAILED: { kind: "unavailable", summary: "no source could serve a chunk in time" },
  SHOAL_ERR_TIMEOUT: { kind: "unavailable", summary: "an operation ran past its deadline" },
  SHOAL_ERR_AGENT_NOT_RUNNING: { kind: "unavailable", summary: "no agent listens on the root's socket" },
  SHOAL_ERR_AGENT_UNAVAILABLE: { kind: "unavailable", summary: "the agent's socket could not be reached" },
  SHOAL_ERR_LAYER_UNAVAILABLE: { kind: "unavailable", summary: "a lazy layer a snapshot stands on is not mounted now" },
  SHOAL_ERR_KEEPER_UNAVAILABLE: { kind: "unavailable", summary: "the FUSE keeper could not be started or reached, or broke its protocol" },
  SHOAL_ERR_CONTAINERD_UNAVAILABLE: { kind: "unavailable", summary: "containerd does not answer on its socket" },
  SHOAL_ERR_SHUTTING_DOWN: { kind: "unavailable", summary: "the service is starting or shutting down" },
  SHOAL_ERR_STORE_CLOSED: { kind: "unavailable", summary: "the chunk store was used after it closed" },
  // the machine
  SHOAL_ERR_DISK_FULL: { kind: "no-space", summary: "no space left for the chunk store, even after eviction" },
  SHOAL_ERR_MOUNT_FAILED: { kind: "system", summary: "the kernel refused a FUSE, overlay or bind mount" },
  SHOAL_ERR_ABORTED: { kind: "cancelled", summary: "the operation was cancelled by its caller or a shutdown" },
  SHOAL_ERR_SHORT_READ: { kind: "internal", summary: "layer data returned fewer bytes than asked for" },
  SHOAL_ERR_INTERNAL: { kind: "internal", summary: "an unexpected error (a bug); remote callers see no detail" },
} as const satisfies Record<string, ErrorInfo>;

/** A shoal error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `s` is one of shoal's error codes (for codes read off the wire). */
export function isErrorCode(s: unknown): s is ErrorCode {
  return typeof s === "string" && Object.hasOwn(ERROR_CODES, s);
}

/**
 * An error shoal raises on purpose: a stable `code` from the closed set, a
 * `name` equal to its class name, and an optional `cause`.
 */
// eslint-disable-next-line no-restricted-syntax -- the root of the error set
export class ShoalError extends Error {
  /** Stable machine-readable code, e.g. `SHOAL_ERR_DIGEST_MISMATCH`. */
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /** What the code means (`ERROR_CODES[code]`). */
  get kind(): ErrorKind {
    return ERROR_CODES[this.code].kind;
  }
}

/** Bad arguments from a local caller (a flag, a size, a range). */
export class InvalidArgumentError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_INVALID_ARGUMENT", message, options);
  }
}

/** A malformed request from a remote caller: HTTP 400. */
export class BadRequestError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_BAD_REQUEST", message, options);
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

/** The reason an operation was cancelled (an abort reason, a hedge that lost, a job stopped). */
export class AbortedError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_ABORTED", message, options);
  }
}

/**
 * `err` as a `ShoalError`: itself when it is one; an `AbortError` (from
 * `AbortSignal`) as `SHOAL_ERR_ABORTED`; a `TimeoutError` (a deadline,
 * `AbortSignal.timeout`) as `SHOAL_ERR_TIMEOUT`; anything else as
 * `SHOAL_ERR_INTERNAL` with `err` as its cause.
 */
export function toShoalError(err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const e = err instanceof Error ? err : new ShoalError("SHOAL_ERR_INTERNAL", String(err));
  if (e.name === "AbortError") return new AbortedError(e.message, { cause: e });
  if (e.name === "TimeoutError") return new ShoalError("SHOAL_ERR_TIMEOUT", e.message, { cause: e });
  return new ShoalError("SHOAL_ERR_INTERNAL", e.message, { cause: e });
}

/** The kind of any error: its code's, or `internal` for errors that are not shoal's. */
export function kindOf(err: unknown): ErrorKind {
  return toShoalError(err).kind;
}

// ---- the edges ----------------------------------------------------------

/** HTTP status by kind: the agent's control API, the supernode API, the registry mirror. */
const HTTP_STATUS: Readonly<Record<ErrorKind, number>> = {
  invalid: 400, unauthorized: 401, denied: 403, "not-found": 404, exists: 409, conflict: 409, range: 416,
  malformed: 422, precondition: 422, unsupported: 422, corrupt: 502, upstream: 502, unavailable: 503,
  "no-space": 507, system: 500, cancelled: 503, internal: 500,
};

/** FUSE errno name by kind: what a reader of a lazy file sees. */
const ERRNO: Readonly<Record<ErrorKind, "ENOENT" | "EINTR" | "EIO">> = {
  invalid: "EIO", unauthorized: "EIO", denied: "EIO", "not-found": "ENOENT", exists: "EIO", conflict: "EIO", range: "EIO",
  malformed: "EIO", precondition: "EIO", unsupported: "EIO", corrupt: "EIO", upstream: "EIO", unavailable: "EIO",
  "no-space": "EIO", system: "EIO", cancelled: "EINTR", internal: "EIO",
};

/** gRPC status name by kind: the snapshotter's answers to containerd (its errdefs understand these). */
const GRPC_STATUS: Readonly<Record<ErrorKind, GrpcStatusName>> = {
  invalid: "INVALID_ARGUMENT", unauthorized: "UNAUTHENTICATED", denied: "PERMISSION_DENIED", "not-found": "NOT_FOUND",
  exists: "ALREADY_EXISTS", conflict: "FAILED_PRECONDITION", range: "OUT_OF_RANGE", malformed: "INVALID_ARGUMENT",
  precondition: "FAILED_PRECONDITION", unsupported: "UNIMPLEMENTED", corrupt: "FAILED_PRECONDITION", upstream: "UNAVAILABLE",
  unavailable: "UNAVAILABLE", "no-space": "RESOURCE_EXHAUSTED", system: "INTERNAL", cancelled: "CANCELLED", internal: "INTERNAL",
};

/** OCI Distribution error code by kind (the mirror names not-found by route: BLOB_UNKNOWN, MANIFEST_UNKNOWN). */
const OCI_ERROR: Readonly<Record<ErrorKind, OciErrorCode>> = {
  invalid: "NAME_INVALID", unauthorized: "UNAUTHORIZED", denied: "DENIED", "not-found": "NAME_UNKNOWN", exists: "UNSUPPORTED",
  conflict: "UNSUPPORTED", range: "RANGE_INVALID", malformed: "MANIFEST_INVALID", precondition: "UNSUPPORTED",
  unsupported: "UNSUPPORTED", corrupt: "DIGEST_INVALID", upstream: "UNAVAILABLE", unavailable: "UNAVAILABLE",
  "no-space": "UNAVAILABLE", system: "UNKNOWN", cancelled: "UNAVAILABLE", internal: "UNKNOWN",
};

/** gRPC status codes by name (grpc's `status.proto`). */
export const GRPC_CODES = {
  OK: 0, CANCELLED: 1, UNKNOWN: 2, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, FAILED_PRECONDITION: 9, ABORTED: 10, OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12, INTERNAL: 13, UNAVAILABLE: 14, DATA_LOSS: 15, UNAUTHENTICATED: 16,
} as const;
/** A gRPC status name. */
export type GrpcStatusName = keyof typeof GRPC_CODES;

/** The OCI Distribution error codes shoal answers. */
export type OciErrorCode =
  | "BLOB_UNKNOWN" | "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "NAME_INVALID" | "MANIFEST_INVALID" | "DIGEST_INVALID"
  | "RANGE_INVALID" | "UNAUTHORIZED" | "DENIED" | "UNSUPPORTED" | "UNAVAILABLE" | "UNKNOWN";

/** HTTP status for an error (its code's override, else its kind's); non-shoal errors 500. */
export function httpStatusOf(err: unknown): number {
  const e = toShoalError(err);
  const info: ErrorInfo = ERROR_CODES[e.code];
  return info.http ?? HTTP_STATUS[info.kind];
}

/** FUSE errno name for an error: ENOENT when the data is gone, EINTR when cancelled, else EIO. */
export function errnoNameOf(err: unknown): "ENOENT" | "EINTR" | "EIO" {
  return ERRNO[kindOf(err)];
}

/** gRPC status (name and number) for an error. */
export function grpcStatusOf(err: unknown): { name: GrpcStatusName; code: number } {
  const name = GRPC_STATUS[kindOf(err)];
  return { name, code: GRPC_CODES[name] };
}

/** OCI Distribution error code for an error. */
export function ociErrorOf(err: unknown): OciErrorCode {
  return OCI_ERROR[kindOf(err)];
}

/**
 * `{code, message}` for an error that leaves this process (API answers):
 * a shoal error's own; for anything else `SHOAL_ERR_INTERNAL` and a message
 * that says nothing of internals.
 */
export function errorBody(err: unknown): { code: ErrorCode; message: string } {
  const e = toShoalError(err);
  return e.code === "SHOAL_ERR_INTERNAL" ? { code: e.code, message: "internal error" } : { code: e.code, message: e.message };
}
