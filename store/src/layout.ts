import { InvalidArgumentError } from "@shoal/base";
import { createHash } from "node:crypto";
import path from "node:path";

/**
 * On-disk layout of the chunk store:
 *
 *   ROOT/chunks/<hex[0..2]>/<hex>.z     compressed bytes (sha256 = hex)
 *   ROOT/chunks/<hex[0..2]>/<hex>.raw   uncompressed bytes
 *   ROOT/chunks/<hex[0..2]>/<hex>.<z|raw>.tmp-<random>   a write in progress
 */

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

/** A committed chunk file name: `<hex>.z` or `<hex>.raw`. */
export const CHUNK_FILE_RE = /^([0-9a-f]{64})\.(z|raw)$/;

/** A shard directory name under `ROOT/chunks`. */
export const SHARD_DIR_RE = /^[0-9a-f]{2}$/;

/** Paths of one chunk's files. */
export interface ChunkPaths {
  dir: string;
  z: string;
  raw: string;
}

/**
 * The lowercase hex of a `sha256:<64 hex>` chunk digest.
 * Throws `InvalidArgumentError` for anything else (other algorithms, upper case).
 */
export function digestHex(digest: string): string {
  const m = DIGEST_RE.exec(digest);
  if (!m?.[1]) throw new InvalidArgumentError(`chunk store: not a sha256 digest: ${JSON.stringify(digest)}`);
  return m[1];
}

/** `ROOT/chunks`, the directory that holds every shard directory. */
export function chunksDir(root: string): string {
  return path.join(root, "chunks");
}

/** Paths of the chunk with digest hex `hex` under store root `root`. */
export function chunkPaths(root: string, hex: string): ChunkPaths {
  const dir = path.join(chunksDir(root), hex.slice(0, 2));
  return { dir, z: path.join(dir, `${hex}.z`), raw: path.join(dir, `${hex}.raw`) };
}

/** Lowercase hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}
