/**
 * Fixture images for the lazy layer format: layer definitions (tar entries,
 * exact tar bytes, where every entry landed) ready for `writeImageLayout`.
 * Everything is deterministic for given options.
 */
import { createHash } from "node:crypto";
import { boundaryLayer } from "./boundary-layer.ts";
import type { BoundaryFile } from "./boundary-layer.ts";
import { baseLayer, changesLayer, longNamesLayer, manySmallFilesLayer } from "./edge-layers.ts";
import type { XattrChoice } from "./edge-layers.ts";
import type { LayerCompression, LayerSpec } from "./image-layout.ts";
import { expectedTree } from "./model.ts";
import { randomBytes } from "./prng.ts";
import { writeTar } from "./tar-writer.ts";
import type { TarSpec, TarEntryLayout, TarFormat } from "./tar-writer.ts";
import type { NodeInfo, NodeType } from "./tree.ts";

/** A fixture layer: a {@link LayerSpec} plus the entries it was built from. */
export interface FixtureLayer extends LayerSpec {
  name: string;
  entries: TarSpec[];
  /** Where each entry (including filler files) landed in `tar`. */
  layout: TarEntryLayout[];
}

/** A fixture image: its layers, bottom first. */
export interface FixtureImage {
  layers: FixtureLayer[];
}

/** Default chunk size of the lazy format: 1 MiB of uncompressed stream. */
export const FIXTURE_CHUNK_SIZE = 1_048_576;

/** Options of {@link edgeCaseImage}. */
export interface EdgeCaseOptions {
  /** Chunk size the boundary layer is laid out for (multiple of 512, ≥ 4096). Default 1 MiB. */
  chunkSize?: number;
  /** PRNG seed for file contents. Default 1. */
  seed?: number;
  /** Number of small files in the "many-files" layer. Default 3000. */
  smallFileCount?: number;
  /** Include links/cross, a hardlink to a file of a lower layer (umoci links it). Default true. */
  crossLayerHardlink?: boolean;
  /** xattr namespaces to use. Default user and trusted (both need root for trusted), no security. */
  xattrs?: Partial<XattrChoice>;
}

/** Result of {@link edgeCaseImage}. */
export interface EdgeCaseImage extends FixtureImage {
  chunkSize: number;
  /** Index (in `layers`) of the chunk-boundary layer. */
  boundaryLayerIndex: number;
  /** Files placed around chunk boundaries in that layer. */
  boundaryFiles: BoundaryFile[];
  /**
   * Predicted snapshot of the unpacked image (from an independent model of
   * umoci's layer application); compare with `diffTrees(expected, snapshot)`.
   * Includes "." (from layer 2's "./" entry).
   */
  expected: Map<string, NodeInfo>;
  /** Named spot checks of overlay semantics on the final tree. */
  checks: { absent: string[]; types: Record<string, NodeType> };
}

function buildLayer(
  name: string, entries: TarSpec[], compression: LayerCompression,
  opts: { defaultFormat?: TarFormat; recordSize?: number } = {},
): FixtureLayer {
  const { tar, layout } = writeTar(entries, opts);
  return { name, entries, layout, tar, compression, createdBy: `shoal testkit: ${name}` };
}

/**
 * The edge-case image, five layers:
 * 0 "base" (gzip): every entry type (file, hardlink, symlink relative/absolute/
 *   dangling/looping, char 1:3, block 7:0, FIFO, dirs), setuid/setgid/sticky,
 *   owners up to 3000000000 (PAX and GNU base-256), mtimes 0/1980/2100/
 *   fractional, UTF-8 names, user.* and trusted.* xattrs (also on a symlink and a FIFO).
 * 1 "long-names" (gzip): paths of exactly 100/101/256 bytes, > 255 bytes via PAX and GNU 'L',
 *   long symlink and hardlink targets via PAX linkpath and GNU 'K'.
 * 2 "changes" (uncompressed, GNU format, "./" names, 10240-byte records): a "./"
 *   root entry, whiteouts of a file, a directory, a top-level file and a missing
 *   path, whiteout + re-create, an opaque dir with new contents, file→dir and
 *   dir→file replacement, file→symlink, dir metadata change, a replaced file
 *   that breaks a hardlink pair, and a hardlink into layer 0.
 * 3 "chunk-boundaries" (gzip): see boundary-layer.ts.
 * 4 "many-files" (gzip): `smallFileCount` small files.
 */
export function edgeCaseImage(opts: EdgeCaseOptions = {}): EdgeCaseImage {
  const chunkSize = opts.chunkSize ?? FIXTURE_CHUNK_SIZE;
  const seed = opts.seed ?? 1;
  const x: XattrChoice = { user: true, trusted: true, security: false, ...opts.xattrs };
  const bnd = boundaryLayer(chunkSize, seed);
  const layers: FixtureLayer[] = [
    buildLayer("base", baseLayer(seed, x), "gzip"),
    buildLayer("long-names", longNamesLayer(seed), "gzip"),
    buildLayer("changes", changesLayer(seed, opts.crossLayerHardlink ?? true), "none", { defaultFormat: "gnu", recordSize: 10240 }),
    { name: "chunk-boundaries", entries: bnd.entries, layout: bnd.layout, tar: bnd.tar, compression: "gzip", createdBy: "shoal testkit: chunk-boundaries" },
    buildLayer("many-files", manySmallFilesLayer(seed, opts.smallFileCount ?? 3000), "gzip"),
  ];
  return {
    layers, chunkSize, boundaryLayerIndex: 3, boundaryFiles: bnd.files,
    expected: expectedTree(layers),
    checks: {
      absent: [
        "rootfile", ".wh.rootfile", "wh/gone-file.txt", "wh/.wh.gone-file.txt", "wh/gone-dir", "wh/gone-dir/a",
        "wh/gone-dir/sub/b", "wh/never-existed", "opaque/old1", "opaque/sub", "opaque/sub/old2",
        "opaque/.wh..wh..opq", "replace/dir-becomes-file/child",
      ],
      types: {
        "wh/keep.txt": "file", "wh/recreated": "file", "opaque/new1": "file", "opaque/keep-name": "file",
        "opaque/sub3/new3": "file", "replace/file-becomes-dir": "dir", "replace/file-becomes-dir/child": "file",
        "replace/dir-becomes-file": "file", "meta/owned-1000": "symlink", "dev/null": "char", "dev/loop0": "block",
        "dev/fifo": "fifo", "links/rel": "symlink", "links/dangling": "symlink", "tmp": "dir",
      },
    },
  };
}

/** Options of {@link largeImage}. */
export interface LargeImageOptions {
  /** Approximate total bytes of file data (incompressible). */
  totalBytes: number;
  /** The small known file. Default path "app/needle.txt", a few hundred bytes of text. */
  smallFile?: { path?: string; data?: Uint8Array };
  /** Number of layers the data is spread over (default 2). */
  layers?: number;
  seed?: number;
  /** File size range (default 64 KiB .. 4 MiB). */
  minFileSize?: number;
  maxFileSize?: number;
}

/** Result of {@link largeImage}. */
export interface LargeImage extends FixtureImage {
  smallFile: { path: string; data: Uint8Array; sha256: string; layerIndex: number };
  /** Total bytes of file data in all layers. */
  fileBytes: number;
  fileCount: number;
}

/**
 * An image of about `totalBytes` of random (incompressible) file data in
 * many files under big/dNN/, spread over `layers` gzip layers, plus one small
 * known file in the middle of the last layer: reading it lazily should fetch
 * a tiny fraction of the image.
 */
export function largeImage(opts: LargeImageOptions): LargeImage {
  const seed = opts.seed ?? 7;
  const nLayers = Math.max(1, opts.layers ?? 2);
  const min = opts.minFileSize ?? 64 * 1024;
  const max = Math.max(min, opts.maxFileSize ?? 4 * 1024 * 1024);
  const smallPath = opts.smallFile?.path ?? "app/needle.txt";
  const smallData = opts.smallFile?.data ?? new TextEncoder().encode("shoal needle: this small file must load lazily\n".repeat(8));
  const perLayer = Math.ceil(opts.totalBytes / nLayers);
  const layers: FixtureLayer[] = [];
  let fileBytes = 0;
  let fileCount = 0;
  let k = 0;
  for (let li = 0; li < nLayers; li++) {
    const entries: TarSpec[] = [{ path: "big", type: "dir" }];
    const files: TarSpec[] = [];
    let bytes = 0;
    while (bytes < perLayer && fileBytes < opts.totalBytes) {
      const size = Math.min(min + (((k * 2654435761) >>> 0) % (max - min + 1)), opts.totalBytes - fileBytes);
      files.push({ path: `big/l${li}/f${String(k).padStart(5, "0")}.bin`, type: "file", data: randomBytes(seed * 1_000_003 + k, size) });
      bytes += size;
      fileBytes += size;
      fileCount++;
      k++;
    }
    entries.push({ path: `big/l${li}`, type: "dir" });
    if (li === nLayers - 1) {
      const mid = Math.floor(files.length / 2);
      const dirs = smallPath.split("/").slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join("/"));
      entries.push(...dirs.map((d): TarSpec => ({ path: d, type: "dir" })), ...files.slice(0, mid));
      entries.push({ path: smallPath, type: "file", data: smallData }, ...files.slice(mid));
    } else {
      entries.push(...files);
    }
    layers.push({ ...buildLayer(`large-${li}`, entries, "gzip"), gzipLevel: 1 });
  }
  return {
    layers, fileBytes, fileCount,
    smallFile: { path: smallPath, data: smallData, sha256: createHash("sha256").update(smallData).digest("hex"), layerIndex: nLayers - 1 },
  };
}
