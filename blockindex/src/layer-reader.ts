import { DigestMismatchError, InvalidArgumentError } from "@shoal/base";
import { createHash } from "node:crypto";
import { inflateChunk } from "./inflate-chunk.ts";
import type { Chunk, LayerIndex } from "./layer-index.ts";
import type { TarEntry } from "./tar-entry.ts";

/**
 * Where compressed chunk bytes come from (local store, peers, a supernode,
 * the registry). Implementations return exactly `chunk.length` bytes: the
 * blob bytes at `[chunk.offset, chunk.offset + chunk.length)`. They need not
 * verify them; `LayerReader` does.
 */
export interface LayerChunks {
  fetchChunk(chunk: Chunk, opts?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/** True when `bytes` hash to the chunk's recorded sha256. */
export function chunkMatches(chunk: Chunk, bytes: Uint8Array): boolean {
  return bytes.length === chunk.length && createHash("sha256").update(bytes).digest().equals(chunk.digest);
}

/**
 * Reads file data out of one lazy layer through a `LayerChunks`, verifying
 * every chunk against the index before inflating it.
 */
export class LayerReader {
  readonly index: LayerIndex;
  private readonly source: LayerChunks;
  private readonly layer: string | undefined;

  constructor(components: { index: LayerIndex; source: LayerChunks }, init: { layer?: string } = {}) {
    this.index = components.index;
    this.source = components.source;
    this.layer = init.layer;
  }

  /**
   * Uncompressed bytes of chunk `i`, verified. Throws
   * `DigestMismatchError` when the source returned other bytes.
   */
  async readChunk(i: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const chunk = this.index.chunk(i);
    const bytes = await this.source.fetchChunk(chunk, opts);
    if (!chunkMatches(chunk, bytes)) {
      const actual = createHash("sha256").update(bytes).digest("hex");
      throw new DigestMismatchError(`${this.layer ?? "layer"} chunk ${i}`, `sha256:${chunk.digest.toString("hex")}`, `sha256:${actual}`);
    }
    return inflateChunk(chunk, bytes, { layer: this.layer });
  }

  /**
   * Up to `length` bytes of regular file `entry` starting at `offset`
   * (offsets within the file). Reading at or past end-of-file returns an
   * empty buffer; a read that crosses end-of-file is shortened.
   */
  async read(entry: TarEntry, offset: number, length: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(`bad read range ${offset}+${length}`);
    }
    const end = Math.min(entry.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const start = entry.dataOffset + offset;
    const range = this.index.chunksForRange(start, end - offset)!;
    const parts = await Promise.all(
      Array.from({ length: range.last - range.first + 1 }, (_, k) => this.readChunk(range.first + k, opts)),
    );
    const base = this.index.chunk(range.first).uncompressedOffset;
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return all.subarray(start - base, start - base + (end - offset));
  }
}
