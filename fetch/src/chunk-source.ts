/**
 * The seam between the fetcher and the places chunks come from: the origin
 * registry, the datacenter supernodes, neighbouring peers. One conformance
 * suite (`@shoal/fetch/testsuite`, `chunkSourceSuite`) holds every
 * implementation and every fake to this contract.
 */
import { InvalidArgumentError } from "@shoal/base";
import type { RemoteLayer } from "./remote-layer.ts";

/** Names of sources, as metrics and `shoal status` show them. */
export type SourceName = "origin" | "supernode" | "peer" | (string & {});

/**
 * A place compressed chunks of lazy layers come from.
 *
 * - `fetchChunks(layer, first, last)`: `first` and `last` are chunk
 *   positions in `layer.index`, inclusive, `0 <= first <= last <
 *   chunkCount`; anything else rejects with `InvalidArgumentError` before
 *   any I/O. It resolves with exactly `last - first + 1` buffers, in order:
 *   buffer `k` holds what the source claims are the compressed bytes of
 *   chunk `first + k`, the blob bytes `[chunk.offset, chunk.offset +
 *   chunk.length)`. Bytes are not verified here (the fetcher checks each
 *   against the index), so a source may be wrong about bytes but never about
 *   the count. It rejects with a `ShoalError` when it cannot serve the whole
 *   run (unavailable, not found, refused), and with the signal's reason,
 *   promptly, once `signal` aborts. A source that streams calls
 *   `onChunk(k, bytes)` as soon as chunk `first + k`'s bytes have arrived,
 *   before it resolves (so a reader waits for its own chunk only, not the
 *   run); it may call it again for the same `k` after a retry; the buffers
 *   it resolves with are authoritative. Sources that cannot stream never call it.
 * - `canServe(layer, chunk?)`: answers from memory, without I/O. False means
 *   the source surely cannot serve chunk `chunk` (any chunk of `layer` when
 *   undefined) now, and is skipped; true means it may.
 * - `reportBad(layer, chunk)`: the bytes this source last returned for
 *   chunk position `chunk` failed verification; stop trusting whoever sent them.
 * - `lastResort`: asked only once every other source failed, never as a
 *   hedge (the origin registry behind the swarm).
 */
export interface ChunkSource {
  readonly name: SourceName;
  readonly lastResort?: boolean;
  fetchChunks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]>;
  canServe?(layer: RemoteLayer, chunk?: number): boolean;
  reportBad?(layer: RemoteLayer, chunk: number): void;
}

/** Options of `ChunkSource.fetchChunks`. */
export interface FetchChunksOptions {
  signal: AbortSignal;
  /** Chunk `first + k` has arrived (see `ChunkSource`). */
  onChunk?: (k: number, bytes: Uint8Array) => void;
  /** Nobody waits for these chunks (the prefetch): a source that queues may put them behind others. */
  background?: boolean;
}

/** Throws `InvalidArgumentError` unless `first..last` is a run of chunk positions of `layer`. */
export function checkRun(layer: RemoteLayer, first: number, last: number): void {
  const n = layer.index.chunkCount;
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 0 || first > last || last >= n) {
    throw new InvalidArgumentError(`chunks ${first}..${last} are not a run of the layer's ${n} chunks (${layer.digest})`);
  }
}

/** The blob byte range `[start, end)` that chunks `first..last` of `layer` occupy. */
export function runBytes(layer: RemoteLayer, first: number, last: number): { start: number; end: number } {
  const a = layer.index.chunk(first);
  const b = layer.index.chunk(last);
  return { start: a.offset, end: b.offset + b.length };
}

/** Cut the bytes of a run (`runBytes`) into its chunks, by the index's lengths; a short run gives short pieces, which fail verification. */
export function splitRun(layer: RemoteLayer, first: number, last: number, bytes: Uint8Array): Uint8Array[] {
  const base = layer.index.chunk(first).offset;
  const out: Uint8Array[] = [];
  for (let i = first; i <= last; i++) {
    const c = layer.index.chunk(i);
    out.push(bytes.subarray(Math.min(bytes.length, c.offset - base), Math.min(bytes.length, c.offset - base + c.length)));
  }
  return out;
}

/** Where each chunk of the run `first..last` ends, counted from the run's first byte (for a `RangeSplitter`). */
export function runEnds(layer: RemoteLayer, first: number, last: number): number[] {
  const base = layer.index.chunk(first).offset;
  const ends: number[] = [];
  for (let i = first; i <= last; i++) {
    const c = layer.index.chunk(i);
    ends.push(c.offset + c.length - base);
  }
  return ends;
}
