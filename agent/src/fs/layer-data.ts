/**
 * What the layer filesystem needs from the rest of the agent: a layer's
 * index, a way to read its uncompressed bytes, and (for hardlinks into lower
 * layers) a way to find a file in the layers below.
 */
import { untilAborted } from "@shoal/base";
import { MergedTree, type LayerIndex, type LayerReader, type TarEntry } from "@shoal/blockindex";

/** Reads a layer's uncompressed tar stream. */
export interface LayerData {
  /**
   * Exactly `length` bytes of the layer's uncompressed tar stream, starting
   * at byte `offset`. The filesystem never asks for bytes past the end of the
   * stream and never for `length` 0. Reject with a `ShoalError` of code
   * `SHOAL_ERR_NOT_FOUND` when the data is gone (the reader gets ENOENT);
   * any other rejection gives the reader EIO. `signal` aborts when the
   * reading process is interrupted.
   */
  read(offset: number, length: number, opts?: { signal?: AbortSignal }): Promise<Buffer>;
  /**
   * A reader starts on the file at `[offset, offset + length)` of the stream
   * (called once per file, just before its first `read`, which asks for
   * bytes at `readAt`): make the file's bytes local early, in as few
   * requests as possible, the part at `readAt` first, so that the read
   * joins that fetch rather than making its own. Optional; never throws;
   * what it fetches is the implementation's bound.
   */
  readingFile?(offset: number, length: number, readAt: number): void;
}

/** A file of a lower layer, as a cross-layer hardlink names it. */
export interface LowerFile {
  /** Its metadata; for regular files `data` holds its bytes at `entry.dataOffset`. Never a hardlink entry. */
  entry: TarEntry;
  data: LayerData;
  /**
   * The layer (by id in the same filesystem) whose tree holds `entry` at
   * `entry.path`: the hardlink then shares that node, so its inode number
   * (and the merged overlay's hardlink) is kept. Without it, or when that
   * layer is not mounted, the hardlink is a separate inode with the same
   * metadata and bytes.
   */
  layerId?: string;
}

/** One layer to serve. */
export interface LayerSnapshot {
  /** Directory name of the layer under the mount point: 1-255 of [A-Za-z0-9._@+=-], not "." or "..". */
  id: string;
  index: LayerIndex;
  data: LayerData;
  /**
   * What the layers below this one have at normalised `path` (the merged
   * view, whiteouts applied), or undefined. Called while the layer is added,
   * for hardlinks whose target this layer does not have and for directories
   * this layer has no entry for (their metadata is taken from below, as
   * overlayfs shows the topmost layer's directory). Omit for a bottom layer.
   */
  resolveLower?: (path: string) => LowerFile | undefined;
}

/**
 * A `resolveLower` over `lowers` (bottom layer first): the merged tree of
 * those layers, built on first use.
 */
export function lowerResolver(lowers: readonly LayerSnapshot[]): (path: string) => LowerFile | undefined {
  let tree: MergedTree | undefined;
  return (path) => {
    tree ??= MergedTree.build(lowers.map((l) => l.index));
    const node = tree.lookup(path);
    if (!node) return undefined;
    const layer = lowers[node.inode.layer]!;
    return { entry: node.inode.entry, data: layer.data, layerId: layer.id };
  };
}

/**
 * A `LayerData` reading through `reader` (verified chunks), keeping the last
 * `cachedChunks` (default 8) inflated chunks and sharing concurrent reads of
 * one chunk.
 */
export function readerLayerData(reader: LayerReader, init: { cachedChunks?: number } = {}): LayerData {
  const max = init.cachedChunks ?? 8;
  const cache = new Map<number, Promise<Buffer>>();
  // Chunk fetches are shared, so one reader's signal must not cancel them:
  // each reader stops waiting on its own signal instead.
  const chunk = (i: number, signal?: AbortSignal): Promise<Buffer> => {
    let p = cache.get(i);
    if (p) {
      cache.delete(i);
      cache.set(i, p);
      return untilAborted(p, signal);
    }
    p = reader.readChunk(i);
    cache.set(i, p);
    p.catch(() => cache.delete(i));
    while (cache.size > max) cache.delete(cache.keys().next().value!);
    return untilAborted(p, signal);
  };
  const base = (i: number) => reader.index.chunk(i).uncompressedOffset;
  return {
    async read(offset, length, opts = {}) {
      const range = reader.index.chunksForRange(offset, length);
      if (!range) return Buffer.alloc(0);
      const parts = await Promise.all(
        Array.from({ length: range.last - range.first + 1 }, (_, k) => chunk(range.first + k, opts.signal)),
      );
      const skip = offset - base(range.first);
      if (parts.length === 1) return parts[0]!.subarray(skip, skip + length);
      const out = Buffer.allocUnsafe(length);
      let pos = 0;
      for (const [k, part] of parts.entries()) {
        const start = k === 0 ? skip : 0;
        pos += part.copy(out, pos, start, Math.min(part.length, start + length - pos));
      }
      return out;
    },
  };
}

