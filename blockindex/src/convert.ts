import { InvalidArgumentError } from "@shoal/base";
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { pipeline, Readable } from "node:stream";
import { createGunzip } from "node:zlib";
import { LayerFormatError } from "./errors.ts";
import { encodeIndexTrailer, type IndexLocation } from "./blob-layout.ts";
import { gzipMember } from "./gzip-member.ts";
import { LayerIndex } from "./layer-index.ts";
import { layerCompression } from "./media-types.ts";
import type { TarEntry } from "./tar-entry.ts";
import { TarParser } from "./tar-reader.ts";
import { DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from "./constants.ts";

/**
 * Default uncompressed bytes per chunk (one gzip member each). 256 KiB: on
 * the realistic image of bench/RESULTS.md it reaches first useful work
 * faster and with less data than 1 MiB or 128 KiB chunks (the fetcher
 * merges adjacent chunks into one request, so small chunks cost little on
 * big reads); the blob is 0.5% larger than with 1 MiB chunks.
 */

/** Settings for `convertLayer`. */
export interface ConvertInit {
  /** Uncompressed bytes per chunk; default `DEFAULT_CHUNK_SIZE`. */
  chunkSize?: number;
  /** gzip level for the data members; default 6. */
  level?: number;
  /** Members compressed at once; default the number of cores + 1. */
  concurrency?: number;
  /** Label used in errors (usually the source layer digest). */
  layer?: string;
  /**
   * Chunk indexes to record as the layer's startup order (read first after a
   * mount), e.g. from a trace of an earlier run; indexes past the last chunk
   * are dropped.
   */
  prefetch?: readonly number[];
  /** Called with the count of source (compressed) bytes consumed so far. */
  onProgress?: (sourceBytes: number) => void;
  signal?: AbortSignal;
}

/** What `convertLayer` produced. */
export interface ConvertedLayer {
  /** sha256 digest and size of the lazy blob written to the sink. */
  digest: string;
  size: number;
  /** sha256 of the uncompressed tar: unchanged by conversion. */
  diffID: string;
  uncompressedSize: number;
  index: LayerIndex;
  indexLocation: IndexLocation;
  /** sha256 of the index members' bytes in the blob (`indexLocation`). */
  indexDigest: string;
}

/**
 * Convert one OCI layer (`source`: the blob bytes, of media type
 * `mediaType`) into a lazy layer: the same uncompressed tar stream, as
 * independent gzip members of `chunkSize` uncompressed bytes, followed by
 * the index members and the footer. Output bytes go to `sink` in order.
 * Deterministic: the same input and settings give the same blob.
 * Throws `LayerFormatError` for a corrupt gzip or tar stream and
 * `UnsupportedMediaTypeError` for zstd and unknown media types.
 */
export async function convertLayer(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  mediaType: string,
  sink: (bytes: Buffer) => Promise<void> | void,
  init: ConvertInit = {},
): Promise<ConvertedLayer> {
  const chunkSize = init.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE) {
    throw new InvalidArgumentError(`chunk size must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE} bytes, got ${chunkSize}`);
  }
  const compression = layerCompression(mediaType);
  const concurrency = init.concurrency ?? availableParallelism() + 1;
  const entries: TarEntry[] = [];
  const parser = new TarParser((e) => entries.push(e), { layer: init.layer });
  const diff = createHash("sha256");
  const blob = createHash("sha256");
  let blobSize = 0;
  const lengths: number[] = [];
  const digests: Buffer[] = [];
  const inflight: Promise<Buffer>[] = [];

  const emit = async (member: Buffer) => {
    lengths.push(member.length);
    digests.push(createHash("sha256").update(member).digest());
    blob.update(member);
    blobSize += member.length;
    await sink(member);
  };
  const drainOne = async () => emit(await inflight.shift()!);

  let pending: Buffer[] = [];
  let pendingLen = 0;
  let uncompressed = 0;
  const flush = async (final: boolean) => {
    while (pendingLen >= chunkSize || (final && pendingLen > 0)) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      const take = Math.min(chunkSize, all.length);
      const piece = all.subarray(0, take);
      const rest = all.subarray(take);
      pending = rest.length ? [rest] : [];
      pendingLen = rest.length;
      const job = gzipMember(piece, init.level ?? 6);
      job.catch(() => {}); // awaited in order below
      inflight.push(job);
      if (inflight.length >= concurrency) await drainOne();
    }
  };

  let consumed = 0;
  const counted = async function* () {
    for await (const piece of source) {
      init.signal?.throwIfAborted();
      consumed += piece.length;
      init.onProgress?.(consumed);
      yield piece;
    }
  };
  // pipeline, not pipe: a failing source (a digest check, a dropped connection) must reach the
  // reader of the inflated stream, and a failing inflate must stop the source
  const tarStream: AsyncIterable<Uint8Array> =
    compression === "gzip" ? pipeline(Readable.from(counted()), createGunzip(), () => undefined) : counted();

  try {
    for await (const piece of tarStream) {
      init.signal?.throwIfAborted();
      const buf = piece as Buffer;
      parser.push(buf);
      diff.update(buf);
      uncompressed += buf.length;
      pending.push(buf);
      pendingLen += buf.length;
      if (pendingLen >= chunkSize) await flush(false);
    }
    parser.end();
    await flush(true);
    while (inflight.length) await drainOne();
  } catch (err) {
    await Promise.allSettled(inflight);
    if (err instanceof Error && "code" in err && typeof err.code === "string" && err.code.startsWith("Z_")) {
      throw new LayerFormatError("SHOAL_ERR_GZIP_CORRUPT", `corrupt gzip stream: ${err.message}`, { layer: init.layer, blobOffset: consumed }, { cause: err });
    }
    throw err;
  }

  const prefetch = [...new Set(init.prefetch ?? [])].filter((c) => Number.isInteger(c) && c >= 0 && c < lengths.length);
  const index = new LayerIndex({ chunkSize, uncompressedSize: uncompressed, chunkLengths: lengths, chunkDigests: digests, entries, prefetch });
  const trailer = encodeIndexTrailer(index, blobSize);
  blob.update(trailer.bytes);
  await sink(trailer.bytes);
  return {
    digest: `sha256:${blob.digest("hex")}`,
    size: blobSize + trailer.bytes.length,
    diffID: `sha256:${diff.digest("hex")}`,
    uncompressedSize: uncompressed,
    index,
    indexLocation: trailer.location,
    indexDigest: trailer.digest,
  };
}
