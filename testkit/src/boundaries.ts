/**
 * Placing tar entries at exact offsets of the uncompressed stream by
 * inserting filler files, so fixtures can put file data on chunk boundaries.
 */
import { BLOCK } from "./tar-header.ts";
import type { TarSpec, TarEntryLayout, TarWriter } from "./tar-writer.ts";

/** Makes a filler entry of `size` bytes; must give the same header size for any size. */
export type FillerFactory = (size: number) => TarSpec;

const mod = (a: number, m: number): number => ((a % m) + m) % m;

/** Throws unless `chunkSize` is a positive multiple of 512 and at least 4096. */
export function checkChunkSize(chunkSize: number): void {
  if (!Number.isInteger(chunkSize) || chunkSize < 4096 || chunkSize % BLOCK !== 0) {
    throw new RangeError(`chunkSize ${chunkSize} must be a multiple of ${BLOCK} and >= 4096`);
  }
}

/**
 * Adds a filler file to `w` if needed so that, when `next` is added right
 * after, its data starts at an offset ≡ `residue` (mod `chunkSize`).
 * `residue` must be a multiple of 512 (data always starts on a block).
 * Returns the filler entry and its layout, or undefined when none was needed.
 */
export function alignNextData(
  w: TarWriter, next: TarSpec, chunkSize: number, residue: number, filler: FillerFactory,
): { entry: TarSpec; layout: TarEntryLayout } | undefined {
  if (residue % BLOCK !== 0) throw new RangeError(`residue ${residue} is not a multiple of ${BLOCK}`);
  const hn = w.headerSize(next);
  if (mod(w.offset + hn - residue, chunkSize) === 0) return undefined;
  const hf = w.headerSize(filler(0));
  const entry = filler(mod(residue - (w.offset + hf + hn), chunkSize));
  return { entry, layout: w.add(entry) };
}

/**
 * Adds a filler file to `w` if needed so that the archive, once finished
 * without record padding (two zero blocks), is a whole number of chunks.
 */
export function alignEnd(w: TarWriter, chunkSize: number, filler: FillerFactory): { entry: TarSpec; layout: TarEntryLayout } | undefined {
  if (mod(w.offset + 2 * BLOCK, chunkSize) === 0) return undefined;
  const hf = w.headerSize(filler(0));
  const entry = filler(mod(-(w.offset + hf + 2 * BLOCK), chunkSize));
  return { entry, layout: w.add(entry) };
}
