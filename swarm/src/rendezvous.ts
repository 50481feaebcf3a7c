/** Rendezvous (highest random weight) hashing of chunk digests over supernodes. */
import { createHash } from "node:crypto";

/** Canonical form of a supernode base URL: trailing slashes removed. */
export function normalizeSupernodeUrl(url: string): string {
  return url.replace(/\/+$/, "");
}

function score(key: string, url: string): string {
  return createHash("sha256").update(`${key}|${url}`).digest("hex");
}

/**
 * Supernode base URLs ordered by preference for `key` (a chunk digest
 * `sha256:<hex>`): descending `sha256(key + "|" + url)` compared as a
 * 256-bit big-endian number, URLs normalised (no trailing slash) before
 * hashing, duplicates removed. An agent tries them in this order, moving to
 * the next when one fails. Empty `peers` gives an empty list.
 */
export function rankSupernodes(key: string, peers: readonly string[]): string[] {
  const unique = [...new Set(peers.map(normalizeSupernodeUrl))];
  const scored = unique.map((url) => ({ url, s: score(key, url) }));
  scored.sort((a, b) => (a.s < b.s ? 1 : a.s > b.s ? -1 : a.url < b.url ? -1 : 1));
  return scored.map((x) => x.url);
}

/** The supernode that owns `chunkDigest`: the first of `rankSupernodes`; undefined when `peers` is empty. */
export function ownerOf(chunkDigest: string, peers: readonly string[]): string | undefined {
  return rankSupernodes(chunkDigest, peers)[0];
}
