/**
 * Ordinary layers (gzip, uncompressed tar) read lazily through a seekable
 * index: from the supernodes, which build each once from one read of the
 * blob; or, with no supernode, built here from a full read of the blob (a
 * last resort: that pull is not lazy). Either way the index must name the
 * blob it is used for, and every span is verified against its digest as it
 * arrives; `auditSeekableLayer` checks the index itself once every span is
 * local.
 */
import { createHash } from "node:crypto";
import { digestOf, ShoalError } from "@shoal/base";
import { attachWindows, chunkDigest, chunkMatches, decodeSeekableIndex, layerCompression, SeekableIndexBuilder, unpackWindow, type Checkpoint, type Chunk, type LayerIndex } from "@shoal/blockindex";
import type { Descriptor, RegistryClients } from "@shoal/oci";
import type { LayerRef } from "@shoal/swarm";
import type { Logger } from "pino";
import type { RemoteLayer } from "./remote-layer.ts";

/** A place seekable indexes come from. */
export interface SeekableIndexSource {
  /** Name for logs and status: `supernode`, `local`. */
  readonly name: string;
  /**
   * The encoded seekable index of `layer` (unverified: `decodeSeekableLayerIndex`
   * checks it names the blob), with its whole window pack when the source has
   * it at hand (a local build).
   */
  fetchSeekableIndex(layer: LayerRef, opts: { signal?: AbortSignal }): Promise<{ bytes: Uint8Array; pack?: Uint8Array }>;
  /** Bytes `[start, end)` of the layer's window pack (unverified: each window is checked against the index). */
  fetchWindows?(layer: LayerRef, start: number, end: number, opts: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/** Builds the index here from one full read of the blob from its registry (verified against its digest). */
export class LocalSeekableIndexSource implements SeekableIndexSource {
  readonly name = "local";
  readonly #clients: RegistryClients;
  readonly #spacing: number | undefined;

  constructor(components: { clients: RegistryClients }, init: { spacing?: number } = {}) {
    this.#clients = components.clients;
    this.#spacing = init.spacing;
  }

  async fetchSeekableIndex(layer: LayerRef, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array; pack: Uint8Array }> {
    const builder = new SeekableIndexBuilder({ layer: layer.digest, ...(this.#spacing !== undefined ? { spacing: this.#spacing } : {}) });
    const blob = await this.#clients.client(layer.registry).openBlob(layer.repository, layer.digest, opts);
    for await (const piece of blob.body) builder.push(piece);
    const built = builder.end();
    return { bytes: built.bytes, pack: built.pack };
  }
}

/** A seekable index as a source gave it: its bytes (and whole window pack, from a local build), decoded, and how its windows load. */
export interface FetchedSeekableIndex {
  bytes: Uint8Array;
  pack?: Uint8Array;
  index: LayerIndex;
  /** sha256 of `bytes`: what the audit compares a rebuilt index with. */
  indexDigest: string;
  /** Absent when the pack came along (its windows are attached) or the source serves no windows. */
  windows?: WindowLoader;
  source: SeekableIndexSource;
}

/**
 * The seekable index of the ordinary layer `layer` (its manifest
 * descriptor `desc`) from the first of `sources` that answers one naming
 * this blob; which source served it is returned too. Throws
 * `UnsupportedMediaTypeError` for zstd and non-tar layers before asking.
 */
export async function fetchSeekableIndex(
  sources: readonly SeekableIndexSource[], layer: LayerRef, desc: Descriptor, opts: { signal?: AbortSignal; logger?: Logger } = {},
): Promise<FetchedSeekableIndex> {
  layerCompression(desc.mediaType);
  let lastErr: unknown = new ShoalError("SHOAL_ERR_NOT_CONVERTED", `layer ${layer.digest} is not converted, and no source of seekable indexes is configured`);
  for (const source of sources) {
    try {
      const got = await source.fetchSeekableIndex(layer, opts);
      const index = decodeSeekableLayerIndex(got.bytes, layer.digest, desc.size);
      if (got.pack) attachWindows(index, got.pack);
      const windows = got.pack ? undefined : windowLoaderOf(source, layer);
      return { ...got, index, indexDigest: digestOf(got.bytes), ...(windows ? { windows } : {}), source };
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      lastErr = err;
      opts.logger?.warn({ layer: layer.digest, source: source.name, err: (err as Error).message }, "seekable index not available; asking the next source");
    }
  }
  throw lastErr;
}

/** Decode a seekable index and check that it describes blob `digest` of `size` bytes (`SHOAL_ERR_BAD_INDEX` otherwise). */
export function decodeSeekableLayerIndex(bytes: Uint8Array, digest: string, size: number): LayerIndex {
  const { blob, index } = decodeSeekableIndex(bytes, { layer: digest });
  if (blob.digest !== digest || blob.size !== size) {
    throw new ShoalError("SHOAL_ERR_BAD_INDEX", `the seekable index describes blob ${blob.digest} (${blob.size} bytes), not ${digest} (${size} bytes)`);
  }
  return index;
}

/**
 * Check a seekable layer's index against its blob, once every span is
 * local (`read` answers a span's stored compressed bytes): the spans end to
 * end must hash to the blob's digest (so the span digests were the blob's),
 * and building the index again from them must give the same bytes (so the
 * windows and entries were too). Throws `SHOAL_ERR_BAD_INDEX` saying which
 * failed, `SHOAL_ERR_NOT_FOUND` when a span is not local.
 */
export async function auditSeekableLayer(layer: RemoteLayer, read: (digest: string) => Promise<Uint8Array | undefined>): Promise<void> {
  const index = layer.index;
  const bad = (msg: string) => new ShoalError("SHOAL_ERR_BAD_INDEX", `the seekable index of ${layer.digest} is forged or wrong: ${msg}`);
  const builder = new SeekableIndexBuilder({ layer: layer.digest, spacing: index.chunkSize });
  let end = 0;
  try {
    for (let i = 0; i < index.chunkCount; i++) {
      const c = index.chunk(i);
      const bytes = await read(chunkDigest(c));
      if (!bytes || !chunkMatches(c, bytes)) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `span ${i} of ${layer.digest} is not local`);
      builder.push(c.offset < end ? bytes.subarray(end - c.offset) : bytes);
      end = c.offset + c.length;
    }
  } catch (err) {
    if (err instanceof ShoalError && err.code === "SHOAL_ERR_NOT_FOUND") throw err;
    throw bad(`its spans are not a layer stream (${(err as Error).message})`);
  }
  let built;
  try {
    built = builder.end();
  } catch (err) {
    throw bad(`its spans are not a layer stream (${(err as Error).message})`);
  }
  if (built.blobDigest !== layer.digest) throw bad(`its spans make up blob ${built.blobDigest}`);
  if (layer.indexDigest !== undefined && digestOf(built.bytes) !== layer.indexDigest) throw bad("the blob gives a different index");
}

/** Loads the packed bytes of one checkpoint window of a seekable layer (`RemoteLayer.windows`). */
export type WindowLoader = (ref: { offset: number; packed: number }, opts: { signal?: AbortSignal }) => Promise<Uint8Array>;

/** A `WindowLoader` over `source`'s window ranges for `layer`, or undefined when it serves none. */
export function windowLoaderOf(source: SeekableIndexSource | undefined, layer: LayerRef): WindowLoader | undefined {
  const fetchWindows = source?.fetchWindows?.bind(source);
  return fetchWindows ? (ref, opts) => fetchWindows(layer, ref.offset, ref.offset + ref.packed, opts) : undefined;
}

/**
 * Make sure `chunk`'s checkpoint window is known before it is inflated:
 * from the layer's window loader (checked against the index), else derived
 * from the uncompressed bytes before the span (`readBefore`, which reads
 * them through the spans before it), checked against the same digest. The
 * window is kept on the checkpoint. Throws `SHOAL_ERR_BAD_INDEX` when
 * neither gives the window the index names.
 */
export function loadWindow(layer: RemoteLayer, chunk: Chunk, readBefore: (offset: number, length: number) => Promise<Buffer>, opts: { signal?: AbortSignal } = {}): Promise<void> {
  const cp = chunk.resume;
  if (!cp || cp.window !== undefined || !cp.windowRef) return Promise.resolve();
  // one load per window however many readers need it
  let p = loading.get(cp);
  if (!p) {
    p = loadOnce(layer, chunk, cp, readBefore, opts).finally(() => loading.delete(cp));
    loading.set(cp, p);
  }
  return p;
}

const loading = new WeakMap<Checkpoint, Promise<void>>();

async function loadOnce(layer: RemoteLayer, chunk: Chunk, cp: Checkpoint, readBefore: (offset: number, length: number) => Promise<Buffer>, opts: { signal?: AbortSignal }): Promise<void> {
  const ref = cp.windowRef!;
  let loaded: Buffer | undefined;
  if (layer.windows) {
    try {
      loaded = unpackWindow(ref, await layer.windows(ref, opts));
    } catch (err) {
      if (opts.signal?.aborted) throw err;
    }
  }
  if (!loaded) {
    const before = await readBefore(chunk.uncompressedOffset - ref.length, ref.length);
    if (!createHash("sha256").update(before).digest().equals(ref.digest)) {
      throw new ShoalError("SHOAL_ERR_BAD_INDEX", `the window of span ${chunk.index} of ${layer.digest} is not the data before it`);
    }
    loaded = before;
  }
  cp.window = loaded;
}
