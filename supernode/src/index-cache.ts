/** Layer indexes the supernode has read: in memory and in LevelDB, fetched from the origin once. */
import { type Credentials, type RegistryClients } from "@shoal/oci";
import { type LayerRef } from "@shoal/swarm";
import { LruMap, untilAborted } from "@shoal/base";
import { createHash } from "node:crypto";
import { decodeFooter, decodeIndexMembers, FOOTER_SIZE, LayerFormatError, type IndexLocation, type LayerIndex } from "@shoal/blockindex";
import type { Logger } from "pino";
import { MAX_INDEX_BYTES_IN_MEMORY, MAX_INDEXES_IN_MEMORY, MAX_INDEX_SIZE } from "./constants.ts";

/** The narrow key-value surface the index cache needs (a utf8 `Level` satisfies it). */
export interface IndexDb {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
}

/** A decoded index, its bytes (the index region of the blob) and their digest (the layer's `index.digest` annotation). */
export interface CachedIndex {
  index: LayerIndex;
  indexDigest: string;
  bytes: Uint8Array;
  location: IndexLocation;
}

/** What the caller knows about the index from the layer's annotations, if anything. */
export interface IndexHint {
  location?: IndexLocation;
  /** The index bytes must hash to this (else `SHOAL_ERR_DIGEST_MISMATCH`). */
  indexDigest?: string;
}

const KEY_PREFIX = "snindex!";

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * Indexes by layer blob digest. `get` answers from memory, then LevelDB,
 * then the origin (footer, then the index region), one origin fetch per
 * layer however many callers ask at once. A hint with an `indexDigest` is
 * checked against the cached index too.
 */
export class IndexCache {
  readonly #db: IndexDb;
  readonly #origins: RegistryClients;
  readonly #log: Logger;
  /** Loads in flight, one per layer however many callers ask. */
  readonly #inflight = new Map<string, Promise<CachedIndex>>();
  /** Decoded indexes, the most recently used kept (by count and by bytes). */
  readonly #loaded = new LruMap<string, CachedIndex>({ maxEntries: MAX_INDEXES_IN_MEMORY, maxWeight: MAX_INDEX_BYTES_IN_MEMORY, weigh: (c) => c.bytes.length });

  constructor(components: { db: IndexDb; origins: RegistryClients; logger: Logger }) {
    this.#db = components.db;
    this.#origins = components.origins;
    this.#log = components.logger.child({ component: "index-cache" });
  }

  /** The index of `layer`; throws `LayerFormatError` (`SHOAL_ERR_NOT_CONVERTED`, …) or a `RegistryError`. */
  async get(layer: LayerRef, opts: { signal?: AbortSignal; credentials?: Credentials; hint?: IndexHint } = {}): Promise<CachedIndex> {
    let cached = this.#loaded.get(layer.digest);
    if (!cached) {
      let p = this.#inflight.get(layer.digest);
      if (!p) {
        p = this.#load(layer, opts).finally(() => this.#inflight.delete(layer.digest));
        this.#inflight.set(layer.digest, p);
        p.then((c) => this.#loaded.set(layer.digest, c), () => undefined);
      }
      cached = await untilAborted(p, opts.signal);
    }
    const want = opts.hint?.indexDigest;
    if (want && want !== cached.indexDigest) {
      throw new LayerFormatError("SHOAL_ERR_DIGEST_MISMATCH", `index digest mismatch: expected ${want}, got ${cached.indexDigest}`, { layer: layer.digest });
    }
    return cached;
  }

  /** The index of layer `digest` if it is loaded already (no I/O). */
  peek(digest: string): CachedIndex | undefined {
    return this.#loaded.get(digest);
  }

  async #load(layer: LayerRef, opts: { credentials?: Credentials; hint?: IndexHint }): Promise<CachedIndex> {
    const key = KEY_PREFIX + layer.digest;
    const stored = await this.#db.get(key).catch(() => undefined);
    if (stored) {
      try {
        const rec = JSON.parse(stored) as { offset: number; size: number; bytes: string };
        const bytes = Buffer.from(rec.bytes, "base64");
        const location = { offset: rec.offset, size: rec.size };
        return { index: decodeIndexMembers(bytes, location, { layer: layer.digest }), indexDigest: sha256(bytes), bytes, location };
      } catch (err) {
        this.#log.warn({ layer: layer.digest, err }, "dropping unreadable cached index");
      }
    }
    // Origin fetches are shared by every caller: they are not aborted by any one of them.
    const client = this.#origins.client(layer.registry, opts.credentials);
    let location = opts.hint?.location;
    if (!location) {
      const tail = await client.getBlobTail(layer.repository, layer.digest, FOOTER_SIZE);
      location = decodeFooter(tail.bytes, tail.totalSize, layer.digest);
    }
    if (location.size <= 0 || location.size > MAX_INDEX_SIZE) {
      throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `index size ${location.size} out of bounds`, { layer: layer.digest });
    }
    const bytes = await client.getBlobRange(layer.repository, layer.digest, location.offset, location.size);
    const indexDigest = sha256(bytes);
    const index = decodeIndexMembers(bytes, location, { layer: layer.digest, ...(opts.hint?.indexDigest ? { expectedDigest: opts.hint.indexDigest } : {}) });
    await this.#db.put(key, JSON.stringify({ offset: location.offset, size: location.size, bytes: Buffer.from(bytes).toString("base64") })).catch((err: unknown) => {
      this.#log.warn({ layer: layer.digest, err }, "could not persist index");
    });
    this.#log.debug({ layer: layer.digest, chunks: index.chunkCount }, "index loaded from origin");
    return { index, indexDigest, bytes, location };
  }
}

