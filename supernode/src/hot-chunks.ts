/**
 * The chunks a supernode read or stored last, held in memory in front of
 * its chunk store. In a peak every host asks for the same startup chunks
 * at once: from memory a served chunk costs no open, read and close of its
 * file and no fresh buffer, which were most of the CPU a supernode spent
 * per chunk (bench/src/supernode-serve.ts).
 *
 * Each chunk is kept in memory of its own that threads can share
 * (a `SharedArrayBuffer`): an API thread (`api-threads.ts`) is handed the
 * bytes without a copy. They are never written to.
 *
 * Only verified bytes enter: what the store read (it checks each chunk's
 * file on its first read in a process), or what the store took (it hashes
 * the bytes unless the caller says it just did). Chunks are addressed by
 * their digest, so a copy here stays right after the store drops the chunk.
 */
import { LruMap } from "@shoal/base";
import type { CompressedChunkStore } from "./chunk-service.ts";

/** What the hot chunks hold. */
export interface HotChunksStats {
  chunks: number;
  /** Memory held, bytes. */
  bytes: number;
}

/** What the hot chunks report to (metrics). */
export interface HotChunksObserver {
  /** A read answered from memory. */
  hotHit?(): void;
}

/** A `CompressedChunkStore` that answers reads of recent chunks from memory; see the module comment. */
export class HotChunks implements CompressedChunkStore {
  readonly #store: CompressedChunkStore;
  readonly #hot: LruMap<string, Buffer>;
  readonly #maxBytes: number;
  readonly #observer: HotChunksObserver;

  /** `maxBytes`: the memory the chunks may hold (0: none, every read goes to the store). */
  constructor(components: { store: CompressedChunkStore; observer?: HotChunksObserver }, init: { maxBytes: number }) {
    this.#store = components.store;
    this.#observer = components.observer ?? {};
    this.#maxBytes = init.maxBytes;
    this.#hot = new LruMap({ maxEntries: Number.MAX_SAFE_INTEGER, maxWeight: init.maxBytes, weigh: (b) => b.byteLength });
  }

  has(digest: string): boolean {
    return this.#hot.has(digest) || this.#store.has(digest);
  }

  async putCompressed(digest: string, compressed: Uint8Array, rawSize: number, opts: { signal?: AbortSignal; verified?: boolean } = {}): Promise<void> {
    await this.#store.putCompressed(digest, compressed, rawSize, opts);
    this.#remember(digest, compressed);
  }

  async readCompressed(digest: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    const hot = this.#hot.get(digest);
    if (hot) {
      this.#observer.hotHit?.();
      return hot;
    }
    const bytes = await this.#store.readCompressed(digest, opts);
    return bytes ? this.#remember(digest, bytes) : undefined;
  }

  stats(): HotChunksStats {
    return { chunks: this.#hot.size, bytes: this.#hot.weight };
  }

  /** Keep a shared copy of `bytes` (unless larger than the whole budget: it would only push out the rest); the copy, or `bytes` when not kept. */
  #remember(digest: string, bytes: Uint8Array): Buffer {
    if (bytes.byteLength > this.#maxBytes || bytes.byteLength === 0) return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
    const shared = Buffer.from(new SharedArrayBuffer(bytes.byteLength));
    shared.set(bytes);
    this.#hot.set(digest, shared);
    return shared;
  }
}
