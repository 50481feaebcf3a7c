/**
 * Typed errors of the supernode. All are `ShoalError`s with a stable `code`;
 * the HTTP edge translates codes to statuses once (`httpStatusOf`).
 */
import { ShoalError } from "@shoal/blockindex";

/** The codes a `SupernodeError` can carry. */
export type SupernodeErrorCode =
  /** Malformed path, query or body. */
  | "SHOAL_ERR_BAD_REQUEST"
  /** No such route. */
  | "SHOAL_ERR_NOT_FOUND"
  /** A chunk range outside the layer's index. */
  | "SHOAL_ERR_CHUNK_RANGE"
  /** The registry is not in the supernode's allow list. */
  | "SHOAL_ERR_REGISTRY_NOT_ALLOWED"
  /** No preheat job with that id. */
  | "SHOAL_ERR_PREHEAT_NOT_FOUND"
  /** A preheat job failed (client side: `preheat()`). */
  | "SHOAL_ERR_PREHEAT_FAILED"
  /** An image layer has no shoal annotations: run `shoal convert` first. */
  | "SHOAL_ERR_NOT_LAZY"
  /** A supernode answered something the client cannot use. */
  | "SHOAL_ERR_SUPERNODE_PROTOCOL"
  /** A supernode could not be reached or answered 5xx. */
  | "SHOAL_ERR_SUPERNODE_UNAVAILABLE"
  /** The supernode is shutting down. */
  | "SHOAL_ERR_SHUTTING_DOWN"
  /** A byte range outside the blob. */
  | "SHOAL_ERR_RANGE_NOT_SATISFIABLE"
  /** The origin has no such blob. */
  | "SHOAL_ERR_REGISTRY_NOT_FOUND"
  /** The origin answered bytes the supernode cannot use. */
  | "SHOAL_ERR_REGISTRY_PROTOCOL";

/** A supernode (server or client) error with a stable `code`. */
export class SupernodeError extends ShoalError {
  declare readonly code: SupernodeErrorCode;
  constructor(code: SupernodeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A bad request from a caller: HTTP 400. */
export class BadRequestError extends SupernodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_BAD_REQUEST", message, options);
  }
}

const STATUS: Readonly<Record<string, number>> = {
  SHOAL_ERR_BAD_REQUEST: 400,
  SHOAL_ERR_INVALID_ARGUMENT: 400,
  SHOAL_ERR_INVALID_REFERENCE: 400,
  SHOAL_ERR_BAD_ANNOTATION: 422,
  SHOAL_ERR_NOT_LAZY: 422,
  SHOAL_ERR_BAD_INDEX: 502,
  SHOAL_ERR_NOT_FOUND: 404,
  SHOAL_ERR_PREHEAT_NOT_FOUND: 404,
  SHOAL_ERR_REGISTRY_NOT_FOUND: 404,
  SHOAL_ERR_NO_MATCHING_PLATFORM: 404,
  SHOAL_ERR_CHUNK_RANGE: 416,
  SHOAL_ERR_RANGE_NOT_SATISFIABLE: 416,
  SHOAL_ERR_REGISTRY_UNAUTHORIZED: 401,
  SHOAL_ERR_REGISTRY_DENIED: 403,
  SHOAL_ERR_REGISTRY_NOT_ALLOWED: 403,
  SHOAL_ERR_DIGEST_MISMATCH: 502,
  SHOAL_ERR_REGISTRY_UNAVAILABLE: 502,
  SHOAL_ERR_REGISTRY_PROTOCOL: 502,
  SHOAL_ERR_REGISTRY_REJECTED: 502,
  SHOAL_ERR_RANGE_NOT_SUPPORTED: 502,
  SHOAL_ERR_SHUTTING_DOWN: 503,
};

/** HTTP status for an error: by its `code` when it is a `ShoalError`, else 500. */
export function httpStatusOf(err: unknown): number {
  return err instanceof ShoalError ? (STATUS[err.code] ?? 500) : 500;
}

/** `{code, message}` body for an error; non-shoal errors become `SHOAL_ERR_INTERNAL`. */
export function errorBody(err: unknown): { code: string; message: string } {
  if (err instanceof ShoalError) return { code: err.code, message: err.message };
  return { code: "SHOAL_ERR_INTERNAL", message: "internal error" };
}
