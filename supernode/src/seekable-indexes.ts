/**
 * Seekable indexes of ordinary layers (gzip or uncompressed tar), built by
 * the supernode that owns the layer the first time an agent asks: one read
 * of the blob, in order, through the block cache (so the same fetch fills
 * the cache the spans are then served from), into a `SeekableIndexBuilder`.
 * The index is published only when the blob read matched its digest: the
 * span digests are then those of the real blob. However many agents ask at
 * the same moment, the blob is read once; the index is kept in the chunk
 * store under its digest, with a `seek!` record naming it.
 */
import { DigestMismatchError, LruMap, ShoalError, untilAborted } from "@shoal/base";
import { SeekableIndexBuilder } from "@shoal/blockindex";
import type { LayerRef } from "@shoal/swarm";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { BlobReadOptions, BlobService, BlockCache, BlockDb } from "./blob-service.ts";

/** `seek!<blob>!<spacing>` → `<index digest> <window pack digest>` (both in the chunk store). */
const RECORD_PREFIX = "seek3!"; // 3: SEEKABLE_INDEX_VERSION; older records hold indexes agents no longer read
/** Decoded answers kept in memory, layers. */
const MAX_REMEMBERED = 1024;

/** A built index as served: its bytes, their digest, and its window pack. */
export interface BuiltIndex {
  bytes: Buffer;
  digest: string;
  pack: Buffer;
}

/** Counts what building costs, for metrics. */
export interface SeekableObserver {
  built?(layer: string, ms: number, blobBytes: number, indexBytes: number): void;
}

/** See the module comment. */
export class SeekableIndexes {
  readonly #blobs: BlobService;
  readonly #cache: BlockCache;
  readonly #db: BlockDb;
  readonly #log: Logger;
  readonly #observer: SeekableObserver | undefined;
  readonly #spacing: number | undefined;
  readonly #building = new Map<string, Promise<BuiltIndex>>();
  readonly #known = new LruMap<string, BuiltIndex>({ maxEntries: MAX_REMEMBERED });
  readonly #lifetime = new AbortController();

  /** `spacing`: uncompressed bytes between checkpoints (`SeekableIndexBuilder`'s default when absent). */
  constructor(components: { blobs: BlobService; cache: BlockCache; db: BlockDb; logger: Logger; observer?: SeekableObserver }, init: { spacing?: number } = {}) {
    this.#blobs = components.blobs;
    this.#cache = components.cache;
    this.#db = components.db;
    this.#observer = components.observer;
    this.#log = components.logger.child({ component: "seekable" });
    this.#spacing = init.spacing;
  }

  /**
   * The seekable index of `blob`, built now unless built before. Checks the
   * caller's access first (`BlobService.size`). Throws
   * `SHOAL_ERR_UNSUPPORTED_MEDIA_TYPE` (zstd), `SHOAL_ERR_GZIP_CORRUPT` or a
   * tar error for a blob that is not a layer shoal reads,
   * `SHOAL_ERR_DIGEST_MISMATCH` when the registry served other bytes.
   */
  async get(blob: LayerRef, opts: BlobReadOptions = {}): Promise<BuiltIndex> {
    const size = await this.#blobs.size(blob, opts);
    const key = `${RECORD_PREFIX}${blob.digest}!${this.#spacing ?? "default"}`;
    const hit = this.#known.get(key) ?? (await this.#stored(key));
    if (hit) return hit;
    let p = this.#building.get(key);
    if (!p) {
      // one build for every caller, not aborted by any one of them
      p = this.#build(blob, size, key, opts.credentials ? { credentials: opts.credentials } : {}).finally(() => this.#building.delete(key));
      p.catch(() => undefined);
      this.#building.set(key, p);
    }
    return untilAborted(p, opts.signal);
  }

  async #stored(key: string): Promise<BuiltIndex | undefined> {
    const record = await this.#db.get(key).catch(() => undefined);
    const [digest, packDigest] = (record ?? "").split(" ");
    if (!digest || !packDigest || !this.#cache.has(digest) || !this.#cache.has(packDigest)) return undefined;
    const bytes = await this.#cache.readCompressed(digest);
    const pack = await this.#cache.readCompressed(packDigest);
    if (!bytes || !pack) return undefined;
    const built = { bytes, digest, pack };
    this.#known.set(key, built);
    return built;
  }

  async #build(blob: LayerRef, size: number, key: string, opts: BlobReadOptions): Promise<BuiltIndex> {
    const started = performance.now();
    const builder = new SeekableIndexBuilder({ layer: blob.digest, ...(this.#spacing !== undefined ? { spacing: this.#spacing } : {}) });
    await this.#blobs.read(blob, 0, size, (piece) => builder.push(piece), { ...opts, signal: this.#lifetime.signal });
    const built = builder.end();
    if (built.blobDigest !== blob.digest) throw new DigestMismatchError(`blob ${blob.digest}`, blob.digest, built.blobDigest);
    const digest = `sha256:${createHash("sha256").update(built.bytes).digest("hex")}`;
    const packDigest = `sha256:${createHash("sha256").update(built.pack).digest("hex")}`;
    const out = { bytes: built.bytes, digest, pack: built.pack };
    try {
      await this.#cache.putCompressed(digest, built.bytes, 0, { verified: true });
      await this.#cache.putCompressed(packDigest, built.pack, 0, { verified: true });
      await this.#db.put(key, `${digest} ${packDigest}`);
    } catch (err) {
      this.#log.warn({ blob: blob.digest, err }, "could not keep a seekable index; it is built again when asked");
    }
    this.#known.set(key, out);
    const ms = performance.now() - started;
    this.#observer?.built?.(blob.digest, ms, size, built.bytes.length);
    this.#log.info({ blob: blob.digest, spans: built.index.chunkCount, entries: built.index.entries.length, blobBytes: size, indexBytes: built.bytes.length, packBytes: built.pack.length, ms: Math.round(ms) }, "seekable index built");
    return out;
  }

  /** Stop builds in flight. */
  close(): void {
    this.#lifetime.abort(new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down"));
  }
}
