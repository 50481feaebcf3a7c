// Test helpers for @shoal/p2p: in-memory chunk providers and digests.
import { createHash, randomBytes } from "node:crypto";
import type { ChunkProvider } from "../src/index.ts";

/** sha256 digest string of `data`. */
export function digestOf(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** A provider serving the given chunks, keyed by their digest. */
export function mapProvider(chunks: Uint8Array[]): ChunkProvider & { chunks: Map<string, Uint8Array> } {
  const map = new Map(chunks.map((c) => [digestOf(c), c] as const));
  return {
    chunks: map,
    async readCompressed(digest: string) {
      return map.get(digest);
    },
  };
}

/** Random bytes as a Uint8Array. */
export function randomChunk(size: number): Uint8Array {
  return new Uint8Array(randomBytes(size));
}

/** A digest no provider holds. */
export const MISSING_DIGEST = `sha256:${"0".repeat(64)}`;
