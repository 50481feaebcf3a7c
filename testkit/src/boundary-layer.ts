/**
 * The chunk-boundary layer of the edge-case fixture: file data placed exactly
 * at, one byte before and one byte after multiples of the chunk size in the
 * uncompressed tar stream, headers on and across boundaries, a file spanning
 * several chunks, and a stream that ends exactly on a boundary.
 */
import { alignEnd, alignNextData, checkChunkSize } from "./boundaries.ts";
import { randomBytes, textBytes } from "./prng.ts";
import { BLOCK } from "./tar-header.ts";
import { TarWriter } from "./tar-writer.ts";
import type { TarSpec, TarEntryLayout } from "./tar-writer.ts";

/** A file placed relative to chunk boundaries, with where its data landed. */
export interface BoundaryFile {
  path: string;
  /** Offset of the first data byte in the uncompressed layer tar. */
  dataOffset: number;
  size: number;
  /** What the placement is meant to exercise. */
  note: string;
}

/** Result of {@link boundaryLayer}. */
export interface BoundaryLayer {
  entries: TarSpec[];
  tar: Uint8Array;
  layout: TarEntryLayout[];
  files: BoundaryFile[];
}

/**
 * Builds the layer for `chunkSize` (multiple of 512, ≥ 4096). All placed
 * files are incompressible; fillers ("bnd/pad-NN") are compressible text.
 * The finished tar is a whole number of chunks (no record padding).
 */
export function boundaryLayer(chunkSize: number, seed: number): BoundaryLayer {
  checkChunkSize(chunkSize);
  const C = chunkSize;
  const w = new TarWriter({ defaultFormat: "pax" });
  const entries: TarSpec[] = [];
  const files: BoundaryFile[] = [];
  let pads = 0;
  const filler = (size: number): TarSpec => ({
    path: `bnd/pad-${String(pads).padStart(2, "0")}`, type: "file", data: textBytes(seed + 500 + pads, size),
  });
  const add = (e: TarSpec): TarEntryLayout => {
    entries.push(e);
    return w.add(e);
  };
  const padded = (pad: { entry: TarSpec } | undefined): void => {
    if (!pad) return;
    entries.push(pad.entry);
    pads++;
  };
  let n = 0;
  /** Places a random file of `size` bytes so its data starts ≡ residue (mod C). */
  const place = (name: string, size: number, residue: number, note: string, extra: Partial<TarSpec> = {}): void => {
    const e: TarSpec = { path: `bnd/${name}`, type: "file", data: randomBytes(seed + 600 + n++, size), ...extra };
    padded(alignNextData(w, e, C, ((residue % C) + C) % C, filler));
    const l = add(e);
    files.push({ path: e.path, dataOffset: l.dataOffset, size, note });
  };
  add({ path: "bnd", type: "dir" });
  place("at-boundary-exact", C, 0, "starts on a boundary, exactly one chunk");
  place("at-boundary-minus-1", C - 1, 0, "starts on a boundary, ends 1 byte before the next");
  place("at-boundary-plus-1", C + 1, 0, "starts on a boundary, ends 1 byte into the next chunk");
  place("ends-at-boundary", 2 * BLOCK, -2 * BLOCK, "ends exactly on a boundary");
  place("ends-1-before", 2 * BLOCK - 1, -2 * BLOCK, "ends 1 byte before a boundary");
  place("ends-1-after", 2 * BLOCK + 1, -2 * BLOCK, "ends 1 byte after a boundary");
  place("header-at-boundary", 100, BLOCK, "ustar header block starts on a boundary");
  place("pax-header-across", 100, BLOCK, "PAX 'x' header before a boundary, main header after it", {
    forcePax: ["mtime"], mtimeNsec: 1,
  });
  place("empty-header-at-boundary", 0, BLOCK, "empty file whose header starts on a boundary");
  place("small-across", 600, -BLOCK, "600 bytes crossing a boundary by 88 bytes");
  place("multi-chunk", 3 * C + C / 2 + 7, 3 * BLOCK, "spans four chunks, starts and ends mid-chunk");
  place("two-chunks-exact", 2 * C, 0, "exactly two whole chunks");
  place("last-file", 1234, 0, "last file before the end-of-archive marker");
  padded(alignEnd(w, C, filler));
  const tar = w.finish();
  return { entries, tar, layout: [...w.layout], files };
}
