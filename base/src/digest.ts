/**
 * Content digests (`algorithm:hex`). shoal accepts sha256 (64 lowercase hex
 * digits) and sha512 (128), the two algorithms the OCI image spec registers.
 */
import { createHash, type Hash } from "node:crypto";
import { DigestMismatchError, InvalidArgumentError } from "./errors.ts";

const DIGEST_RE = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** A `sha256:<64 lower-case hex>` digest, the only form chunk and layer digests take on shoal's own wire. */
export const SHA256_DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** True when `s` is a well-formed `sha256:<hex>` digest. */
export function isSha256Digest(s: unknown): boolean {
  return typeof s === "string" && SHA256_DIGEST_RE.test(s);
}

/** The digest string `sha256:<hex>` of a raw 32-byte sha256 hash (as the layer index stores chunk digests). */
export function digestOfHash(hash: Uint8Array): string {
  return `sha256:${Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString("hex")}`;
}

/** True when `s` is a well-formed sha256 or sha512 digest. */
export function isDigest(s: string): boolean {
  return DIGEST_RE.test(s);
}

/** Throws `InvalidArgumentError` unless `digest` is a well-formed sha256/sha512 digest. */
export function assertDigest(digest: string, what = "digest"): void {
  if (typeof digest !== "string" || !isDigest(digest)) {
    throw new InvalidArgumentError(`${what}: not a valid sha256 or sha512 digest: ${JSON.stringify(String(digest).slice(0, 200))}`);
  }
}

function algorithmOf(digest: string): "sha256" | "sha512" {
  return digest.startsWith("sha512:") ? "sha512" : "sha256";
}

/** The digest of `bytes` (sha256 unless `algorithm` says otherwise). */
export function digestOf(bytes: Uint8Array, algorithm: "sha256" | "sha512" = "sha256"): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest("hex")}`;
}

/** Throws `DigestMismatchError` unless `bytes` hash to `expected` (whose algorithm is used). */
export function verifyDigest(what: string, bytes: Uint8Array, expected: string): void {
  const actual = digestOf(bytes, algorithmOf(expected));
  if (actual !== expected) throw new DigestMismatchError(what, expected, actual);
}

/** Incremental hashing with the algorithm of an expected digest. */
export class Digester {
  readonly expected: string;
  #hash: Hash;
  #bytes = 0;

  constructor(expected: string) {
    assertDigest(expected);
    this.expected = expected;
    this.#hash = createHash(algorithmOf(expected));
  }

  /** Feeds `chunk` into the hash. */
  update(chunk: Uint8Array): void {
    this.#bytes += chunk.length;
    this.#hash.update(chunk);
  }

  /** Bytes hashed so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Finishes hashing; throws `DigestMismatchError` unless the data hashed to `expected`. Call once. */
  verify(what: string): void {
    const actual = `${algorithmOf(this.expected)}:${this.#hash.digest("hex")}`;
    if (actual !== this.expected) throw new DigestMismatchError(what, this.expected, actual);
  }
}
