/** Reading blobs: HEAD, whole (buffered or streamed) and ranges. All verified or bounds-checked. */
import { InvalidArgumentError, assertDigest, Digester, verifyDigest } from "@shoal/base";
import type { IncomingHttpHeaders } from "node:http";
import { closeBody, discard, headerValue, readLimited } from "./body.ts";
import { apiPath, type ClientContext } from "./context.ts";
import { RegistryError } from "./errors.ts";
import { repositoryScope } from "./authenticator.ts";
import { assertRepository } from "./reference.ts";
import { networkErrorCode } from "./retry.ts";
import { describeRequest, type TransportResponse } from "./transport.ts";

/** A blob opened for streaming. */
export interface OpenBlob {
  /** Size in bytes, from Content-Length. */
  size: number;
  /**
   * The blob's bytes. Iterate once. The final chunk is yielded only after the
   * whole blob hashed to its digest; otherwise the iterator throws
   * `DigestMismatchError` (or a `RegistryError` for a short/long body).
   * Breaking out early closes the connection. Not retried once handed out.
   */
  body: AsyncIterable<Uint8Array>;
}

function blobUrl(ctx: ClientContext, repository: string, digest: string): URL {
  assertRepository(repository);
  assertDigest(digest);
  return ctx.url(apiPath(repository, `blobs/${digest}`));
}

function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const v = headerValue(headers["content-length"]);
  if (v === undefined || !/^\d+$/.test(v.trim())) return undefined;
  return Number(v);
}

/** HEAD a blob: its size, or `undefined` if the registry does not have it (404). */
export async function headBlob(ctx: ClientContext, repository: string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<{ size: number } | undefined> {
  const url = blobUrl(ctx, repository, digest);
  return ctx.transport.execute(
    { method: "HEAD", url, scope: repositoryScope(repository, ["pull"]), expect: [200, 404], signal: opts.signal },
    async (res) => {
      await discard(res.body);
      if (res.status === 404) return undefined;
      const size = contentLength(res.headers);
      if (size === undefined) throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("HEAD", url)}: no Content-Length`);
      return { size };
    },
  );
}

/**
 * GETs a whole blob into memory and verifies it against `digest`. Throws
 * `SHOAL_ERR_BLOB_TOO_LARGE` past `maxSize` (default: the client's
 * `maxBufferedBlobSize`) without reading the rest, `DigestMismatchError` if
 * the bytes do not match. For configs and other small blobs.
 */
export async function getBlob(ctx: ClientContext, repository: string, digest: string, opts: { signal?: AbortSignal; maxSize?: number } = {}): Promise<Uint8Array> {
  const url = blobUrl(ctx, repository, digest);
  const limit = opts.maxSize ?? ctx.settings.maxBufferedBlobSize;
  const { bytes } = await ctx.transport.fetchBytes(
    { method: "GET", url, scope: repositoryScope(repository, ["pull"]), expect: [200], signal: opts.signal },
    limit,
    () => new RegistryError("SHOAL_ERR_BLOB_TOO_LARGE", `${describeRequest("GET", url)}: blob larger than ${limit} bytes`),
  );
  verifyDigest(`blob ${repository}@${digest}`, bytes, digest);
  return bytes;
}

/** Opens a blob for streaming (redirects followed). See `OpenBlob` for the verification contract. */
export async function openBlob(ctx: ClientContext, repository: string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<OpenBlob> {
  const url = blobUrl(ctx, repository, digest);
  const res = await ctx.transport.execute(
    { method: "GET", url, scope: repositoryScope(repository, ["pull"]), expect: [200], signal: opts.signal },
    async (r) => r,
  );
  const size = contentLength(res.headers);
  if (size === undefined) {
    closeBody(res.body);
    throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("GET", url)}: no Content-Length`);
  }
  return { size, body: verifiedStream(res, `blob ${repository}@${digest}`, digest, size, opts.signal) };
}

async function* verifiedStream(res: TransportResponse, what: string, digest: string, size: number, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  const digester = new Digester(digest);
  let held: Uint8Array | undefined;
  let complete = false;
  try {
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        if (digester.bytes + chunk.length > size) {
          throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: body longer than Content-Length ${size}`);
        }
        digester.update(chunk);
        if (held) yield held;
        held = chunk;
      }
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (networkErrorCode(err) === undefined) throw err;
      // Not retried: the caller has consumed part of the stream already.
      throw new RegistryError("SHOAL_ERR_REGISTRY_UNAVAILABLE", `${what}: connection lost after ${digester.bytes} of ${size} bytes`, { attempts: 1, cause: err });
    }
    complete = true;
  } finally {
    if (!complete) closeBody(res.body);
  }
  if (digester.bytes !== size) {
    throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: body ended after ${digester.bytes} of ${size} bytes`);
  }
  digester.verify(what);
  if (held) yield held;
}

function checkRange(offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError(`range offset must be a non-negative integer, got ${offset}`);
  if (!Number.isSafeInteger(length) || length <= 0) throw new InvalidArgumentError(`range length must be a positive integer, got ${length}`);
}

/** Parses `bytes start-end/total` (total may be `*`). */
export function parseContentRange(v: string | undefined): { start: number; end: number; total: number | undefined } | undefined {
  const m = v === undefined ? null : /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(v);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return undefined;
  return { start, end, total: m[3] === "*" ? undefined : Number(m[3]) };
}

function rangeNotSupported(url: URL, res: TransportResponse): never {
  closeBody(res.body);
  throw new RegistryError("SHOAL_ERR_RANGE_NOT_SUPPORTED", `${describeRequest("GET", url)}: registry ignored Range and sent the whole blob`, { status: 200 });
}

/**
 * GETs bytes `[offset, offset + length)` of a blob with `Range`. `length` must
 * be > 0 and the range must lie inside the blob: a range starting at or past
 * the end throws `SHOAL_ERR_RANGE_NOT_SATISFIABLE`, as does one that runs past
 * the end (the registry's shorter answer is not returned). A 200 answer
 * (Range ignored) throws `SHOAL_ERR_RANGE_NOT_SUPPORTED` without reading the
 * body. The bytes are not verified here: a range has no digest of its own.
 * `onBytes(piece, at)` sees the body as it arrives (`at`: the piece's offset
 * in the range); after a retried request it starts again at 0.
 */
export async function getBlobRange(ctx: ClientContext, repository: string, digest: string, offset: number, length: number, opts: RangeOptions = {}): Promise<Uint8Array> {
  checkRange(offset, length);
  const url = blobUrl(ctx, repository, digest);
  const end = offset + length - 1;
  return ctx.transport.execute(
    { method: "GET", url, headers: { range: `bytes=${offset}-${end}` }, scope: repositoryScope(repository, ["pull"]), expect: [200, 206], signal: opts.signal },
    async (res) => {
      if (res.status === 200) rangeNotSupported(url, res);
      const cr = parseContentRange(headerValue(res.headers["content-range"]));
      if (!cr || cr.start !== offset) {
        closeBody(res.body);
        throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("GET", url)}: Content-Range does not match bytes=${offset}-${end}`);
      }
      if (cr.end !== end) {
        closeBody(res.body);
        throw new RegistryError("SHOAL_ERR_RANGE_NOT_SATISFIABLE", `${describeRequest("GET", url)}: range ${offset}+${length} runs past the end of the blob (size ${cr.total ?? "unknown"})`, { status: 206 });
      }
      return readExactly(url, res, length, opts.onBytes);
    },
  );
}

/** Options of `getBlobRange`. */
export interface RangeOptions {
  signal?: AbortSignal;
  /** The body as it arrives: `at` is the piece's offset in the range (0 again after a retry). */
  onBytes?: (piece: Uint8Array, at: number) => void;
}

async function readExactly(url: URL, res: TransportResponse, length: number, onBytes?: (piece: Uint8Array, at: number) => void): Promise<Uint8Array> {
  const bytes = await readLimited(res.body, length, () => new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("GET", url)}: body longer than the range`), onBytes);
  if (bytes.length !== length) {
    throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("GET", url)}: body has ${bytes.length} bytes, range has ${length}`);
  }
  return bytes;
}

/**
 * GETs the last `length` bytes of a blob (`Range: bytes=-length`, `length` >
 * 0). Returns them with the blob's total size; a blob shorter than `length`
 * comes back whole. A 200 answer is accepted only when the whole blob is no
 * longer than `length`; otherwise `SHOAL_ERR_RANGE_NOT_SUPPORTED` (body not read).
 */
export async function getBlobTail(ctx: ClientContext, repository: string, digest: string, length: number, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array; totalSize: number }> {
  checkRange(0, length);
  const url = blobUrl(ctx, repository, digest);
  return ctx.transport.execute(
    { method: "GET", url, headers: { range: `bytes=-${length}` }, scope: repositoryScope(repository, ["pull"]), expect: [200, 206], signal: opts.signal },
    async (res) => {
      if (res.status === 200) {
        const size = contentLength(res.headers);
        if (size === undefined || size > length) rangeNotSupported(url, res);
        const bytes = await readExactly(url, res, size);
        verifyDigest(`blob ${repository}@${digest}`, bytes, digest);
        return { bytes, totalSize: size };
      }
      const cr = parseContentRange(headerValue(res.headers["content-range"]));
      if (!cr || cr.total === undefined || cr.end !== cr.total - 1 || cr.end - cr.start + 1 !== Math.min(length, cr.total)) {
        closeBody(res.body);
        throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest("GET", url)}: Content-Range does not match bytes=-${length}`);
      }
      const bytes = await readExactly(url, res, cr.end - cr.start + 1);
      return { bytes, totalSize: cr.total };
    },
  );
}
