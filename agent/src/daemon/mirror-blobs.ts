/**
 * The registry mirror's blobs that this host assembles itself. A lazy layer
 * of a converted image is its chunks (gzip members, back to back) then its
 * index and footer; any other large blob is the supernodes' cache blocks,
 * whose digests a supernode publishes once it verified the whole blob.
 * Either way the mirror sends it piece by piece through the same fetch path
 * as lazy reads (store, peers, supernodes, origin), each piece verified on
 * its own, and a lazy layer's tail from the supernodes' block cache or the
 * origin. The chunks stay in the store, and the layers pulled this
 * way are announced like mounted ones, so the next host's engine gets them
 * from this one.
 */
import { LruMap, ShoalError } from "@shoal/base";
import { chunkDigest, LayerIndex, parseLazyAnnotations } from "@shoal/blockindex";
import type { Fetcher, RemoteLayer } from "@shoal/fetch";
import { isIndex, parseManifest, type Credentials, type RegistryClients } from "@shoal/oci";
import type { BlobSource, LocalBlobs } from "@shoal/registry-proxy";
import { layerKey, type LayerRef, type SupernodeSet } from "@shoal/swarm";
import type { Logger } from "pino";
import type { ImageCatalog } from "./image-catalog.ts";

/** Chunks made local in one go, bytes… */
const WINDOW_BYTES = 8 << 20;
/** … and windows in flight ahead of the one being sent. */
const WINDOWS_AHEAD = 4;
/** Blobs up to this size (configs) are not worth a block list. */
const MIN_BLOCKED_BYTES = 1 << 20;
/** How long a supernode may take to publish a cold blob's block list (it reads the blob whole first), ms. */
const BLOCK_LIST_TIMEOUT_MS = 60_000;

/** See the module comment. */
export class MirrorBlobs implements LocalBlobs {
  readonly #catalog: ImageCatalog;
  readonly #fetcher: Fetcher;
  readonly #store: { readCompressed(digest: string): Promise<Uint8Array | undefined> };
  readonly #supernodes: SupernodeSet | undefined;
  readonly #peers: { warm(layer: string): Promise<void> } | undefined;
  readonly #clients: RegistryClients;
  readonly #log: Logger;
  /**
   * `registry/repository@blob` of a lazy layer → the manifest the mirror saw
   * it in there. Keyed by where the blob was asked for, not by digest alone:
   * a layer two registries share is fetched from (and access-checked by)
   * the registry each request names.
   */
  readonly #byBlob = new LruMap<string, string>({ maxEntries: 100_000 });
  /** Layers pulled through the mirror, most recent kept: announced to the tracker. */
  readonly #pulled = new LruMap<string, RemoteLayer>({ maxEntries: 4096 });

  constructor(components: {
    catalog: ImageCatalog; fetcher: Fetcher; store: { readCompressed(digest: string): Promise<Uint8Array | undefined> };
    supernodes?: SupernodeSet; peers?: { warm(layer: string): Promise<void> }; clients: RegistryClients; logger: Logger;
  }) {
    this.#peers = components.peers;
    this.#catalog = components.catalog;
    this.#fetcher = components.fetcher;
    this.#store = components.store;
    this.#supernodes = components.supernodes;
    this.#clients = components.clients;
    this.#log = components.logger.child({ component: "mirror-blobs" });
  }

  manifest(registry: string, repository: string, digest: string, bytes: Uint8Array, mediaType: string): void {
    let lazy: string[];
    try {
      const m = parseManifest(bytes, mediaType);
      if (isIndex(m)) return;
      lazy = m.layers.filter((l) => parseLazyAnnotations(l.annotations, l.digest) !== undefined).map((l) => l.digest);
    } catch {
      return; // not one shoal can read: its blobs go the ordinary way
    }
    if (lazy.length === 0) return;
    for (const d of lazy) this.#byBlob.set(layerKey({ registry, repository, digest: d }), digest);
    this.#catalog.remember(`${registry}/${repository}@${digest}`, digest, bytes, mediaType).catch((err: unknown) => {
      this.#log.warn({ digest, err: (err as Error).message }, "could not keep a relayed manifest");
    });
  }

  async sources(blob: LayerRef, size: number, credentials: Credentials | undefined, signal: AbortSignal): Promise<BlobSource[]> {
    const manifest = this.#byBlob.get(layerKey(blob));
    const layer = manifest ? await this.#lazyLayer(blob, manifest) : await this.#blockLayer(blob, size, credentials, signal);
    if (!layer) return [];
    const tail = tailStart(layer);
    if (tail === undefined || tail > size) return [];
    this.#pulled.set(layer.digest, layer);
    await this.#peers?.warm(layer.digest);
    return [{ name: "swarm", open: (from, signal) => Promise.resolve(this.#stream(layer, blob, from, tail, size, signal)) }];
  }

  async #lazyLayer(blob: LayerRef, manifest: string): Promise<RemoteLayer | undefined> {
    const image = await this.#catalog.load(`${blob.registry}/${blob.repository}@${manifest}`, { partial: true });
    return image.layers.find((l) => l.digest === blob.digest);
  }

  /**
   * Any other blob as its supernode blocks, when a supernode publishes their
   * digests (it verified the whole blob): then each block is checked on its
   * own, and peers can serve them. Small blobs go the ordinary way.
   */
  async #blockLayer(blob: LayerRef, size: number, credentials: Credentials | undefined, signal: AbortSignal): Promise<RemoteLayer | undefined> {
    if (!this.#supernodes || size <= MIN_BLOCKED_BYTES) return undefined;
    const list = await this.#supernodes.first(blob.digest, (c, s) => c.blocks(blob, { signal: s, ...(credentials ? { credentials } : {}) }), { tryMs: BLOCK_LIST_TIMEOUT_MS, signal });
    if (list.size !== size) return undefined;
    const index = new LayerIndex({
      chunkSize: list.blockBytes,
      uncompressedSize: size,
      chunkLengths: list.blocks.map((_, i) => Math.min(list.blockBytes, size - i * list.blockBytes)),
      chunkDigests: list.blocks.map((d) => Buffer.from(d.slice("sha256:".length), "hex")),
      entries: [],
    });
    return { ...blob, index, kind: "blocks" };
  }

  /** The layers pulled through the mirror lately, for announces. */
  layers(): RemoteLayer[] {
    return [...this.#pulled.values()];
  }

  /** Bytes `[from, size)`: the chunks from the fetch path, then the tail. */
  async *#stream(layer: RemoteLayer, blob: LayerRef, from: number, tail: number, size: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const n = layer.index.chunkCount;
    let i = 0;
    while (i < n && layer.index.chunk(i).offset + layer.index.chunk(i).length <= from) i++;
    const windowEnd = (start: number) => {
      let end = start;
      let bytes = 0;
      while (end < n && bytes < WINDOW_BYTES) bytes += layer.index.chunk(end++).length;
      return end - 1;
    };
    const start = (first: number) => {
      const last = windowEnd(first);
      const ready = this.#fetcher.ensureRange(layer, first, last, { inflate: false, signal });
      ready.catch(() => undefined);
      return { first, last, ready };
    };
    // WINDOWS_AHEAD windows in flight: a cold layer streams at the link's rate, not one round trip per window
    const queue: Array<ReturnType<typeof start>> = [];
    let nextFirst = i;
    const fill = () => {
      while (queue.length < WINDOWS_AHEAD && nextFirst < n) {
        const w = start(nextFirst);
        queue.push(w);
        nextFirst = w.last + 1;
      }
    };
    fill();
    while (queue.length > 0) {
      const w = queue.shift()!;
      await w.ready;
      fill();
      for (let k = w.first; k <= w.last; k++) {
        const chunk = layer.index.chunk(k);
        const bytes = await this.#store.readCompressed(chunkDigest(chunk));
        if (!bytes || bytes.length !== chunk.length) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `chunk ${k} of ${layer.digest} left the store before it was sent`);
        yield chunk.offset < from ? bytes.subarray(from - chunk.offset) : bytes;
      }
    }
    if (size > tail) yield await this.#tail(blob, Math.max(from, tail), size, signal);
  }

  /** The index and footer (unverified here: the mirror checks the whole blob): the supernodes' block cache, else the origin. */
  async #tail(blob: LayerRef, start: number, size: number, signal: AbortSignal): Promise<Uint8Array> {
    for (const c of this.#supernodes?.ranked(blob.digest) ?? []) {
      try {
        const parts: Uint8Array[] = [];
        for await (const p of await c.blob(blob, { signal, range: { start, end: size } })) parts.push(p);
        const bytes = Buffer.concat(parts);
        if (bytes.length === size - start) return bytes;
      } catch (err) {
        if (signal.aborted) throw err;
        this.#log.debug({ supernode: c.url, blob: blob.digest, err: (err as Error).message }, "tail from the supernode failed; asking the next source");
      }
    }
    return this.#clients.client(blob.registry).getBlobRange(blob.repository, blob.digest, start, size - start, { signal });
  }
}

/** Where a lazy layer's index begins, when its chunks lie back to back from offset 0; else undefined. */
function tailStart(layer: RemoteLayer): number | undefined {
  let at = 0;
  for (let i = 0; i < layer.index.chunkCount; i++) {
    const c = layer.index.chunk(i);
    if (c.offset !== at) return undefined;
    at += c.length;
  }
  return at;
}
