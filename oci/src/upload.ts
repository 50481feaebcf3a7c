/** Pushing blobs: existence check, cross-repository mount, monolithic and chunked uploads. */
import { InvalidArgumentError, assertDigest, sleep } from "@shoal/base";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { repositoryScope } from "./authenticator.ts";
import { discard, headerValue } from "./body.ts";
import { headBlob } from "./blobs.ts";
import { apiPath, type ClientContext } from "./context.ts";
import { RegistryError } from "./errors.ts";
import { assertRepository } from "./reference.ts";
import { isRetryableNetworkError, RetryBudget } from "./retry.ts";
import { describeRequest, type TransportResponse } from "./transport.ts";

/** Where a blob's bytes come from: a file (re-read on each attempt) or memory. */
export type BlobSource = { path: string } | Uint8Array;

/** Options of `pushBlob`. */
export interface PushBlobOptions {
  signal?: AbortSignal;
  /** PATCH size for chunked uploads; default the client's `uploadChunkSize`. */
  chunkSize?: number;
  /** Try to mount the blob from this repository of the same registry before uploading. */
  mountFrom?: string;
}

/** How `pushBlob` got the blob into the repository. */
export interface PushBlobResult {
  outcome: "existed" | "mounted" | "uploaded";
}

interface Part {
  offset: number;
  length: number;
  body: () => Uint8Array | Readable;
}

function part(source: BlobSource, offset: number, length: number): Part {
  if (source instanceof Uint8Array) return { offset, length, body: () => source.subarray(offset, offset + length) };
  return { offset, length, body: () => (length === 0 ? new Uint8Array(0) : createReadStream(source.path, { start: offset, end: offset + length - 1 })) };
}

/** The upload URL in a response's `Location` (relative or absolute), resolved against the request URL. */
function location(res: TransportResponse, what: string): URL {
  const loc = headerValue(res.headers["location"]);
  if (!loc) throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: HTTP ${res.status} without Location`);
  const url = new URL(loc, res.url);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: Location is not an HTTP URL`);
  return url;
}

function withDigest(url: URL, digest: string): URL {
  const u = new URL(url);
  // Append by hand: re-serialising with URLSearchParams could re-encode opaque upload state.
  u.search = `${u.search ? `${u.search}&` : "?"}digest=${encodeURIComponent(digest)}`;
  return u;
}

/**
 * Makes blob `digest` (of `size` bytes, read from `source`) present in
 * `repository`. HEADs first and skips an existing blob; with `mountFrom`,
 * tries a cross-repository mount (201 = done; 202 = upload into the session
 * the registry opened). Blobs up to the chunked-upload threshold go in one
 * PUT; larger ones as PATCHes of `chunkSize` bytes with `Content-Range`, then
 * a PUT with `?digest=`. The registry verifies the digest (a mismatch is a
 * `SHOAL_ERR_REGISTRY_REJECTED` with detail `DIGEST_INVALID`). A transient
 * failure in the middle restarts the upload from a new session, within the
 * retry budget. `size` must equal the source's length.
 */
export async function pushBlob(ctx: ClientContext, repository: string, digest: string, size: number, source: BlobSource, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
  assertRepository(repository);
  assertDigest(digest);
  if (opts.mountFrom !== undefined) assertRepository(opts.mountFrom);
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArgumentError(`pushBlob: size must be a non-negative integer, got ${size}`);
  const actualSize = source instanceof Uint8Array ? source.length : (await stat(source.path)).size;
  if (actualSize !== size) throw new InvalidArgumentError(`pushBlob: source has ${actualSize} bytes, size says ${size}`);
  const chunkSize = opts.chunkSize ?? ctx.settings.uploadChunkSize;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) throw new InvalidArgumentError(`pushBlob: chunkSize must be a positive integer`);

  if (await headBlob(ctx, repository, digest, opts)) return { outcome: "existed" };

  const budget = new RetryBudget(ctx.transport.retryOptions);
  for (;;) {
    budget.begin();
    try {
      const result = await uploadOnce(ctx, repository, digest, size, source, chunkSize, opts);
      ctx.logger.debug({ repository, digest, size, outcome: result.outcome }, "pushed blob");
      return result;
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const transient = (err instanceof RegistryError && err.code === "SHOAL_ERR_REGISTRY_UNAVAILABLE") || isRetryableNetworkError(err);
      const wait = transient ? budget.nextDelay() : undefined;
      if (wait === undefined) throw err;
      ctx.logger.debug({ repository, digest, attempt: budget.attempts, delayMs: wait }, "restarting blob upload");
      await sleep(wait, opts.signal);
    }
  }
}

/**
 * POST a new upload session into `repository`, asking to mount `digest`
 * from `mountFrom` when given: status 201 (mounted, no session) or 202 with
 * the session URL; `scope` is the token scope the session needs.
 */
async function openUpload(ctx: ClientContext, repository: string, digest: string, mountFrom: string | undefined, signal: AbortSignal | undefined): Promise<{ status: number; url: URL | undefined; scope: string }> {
  const start = ctx.url(apiPath(repository, "blobs/uploads/"));
  let scope = repositoryScope(repository, ["pull", "push"]);
  if (mountFrom !== undefined && mountFrom !== repository) {
    start.search = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`;
    scope = `${scope} ${repositoryScope(mountFrom, ["pull"])}`;
  }
  const what = describeRequest("POST", start);
  const opened = await ctx.transport.execute(
    { method: "POST", url: start, headers: { "content-length": "0" }, scope, expect: [201, 202], signal },
    async (res) => {
      await discard(res.body);
      return { status: res.status, url: res.status === 202 ? location(res, what) : undefined };
    },
  );
  return { ...opened, scope };
}

async function uploadOnce(ctx: ClientContext, repository: string, digest: string, size: number, source: BlobSource, chunkSize: number, opts: PushBlobOptions): Promise<PushBlobResult> {
  const opened = await openUpload(ctx, repository, digest, opts.mountFrom, opts.signal);
  if (opened.status === 201) return { outcome: "mounted" };
  const scope = opened.scope;
  let url = opened.url!;
  try {
    if (size <= ctx.settings.chunkedUploadThreshold) {
      await finish(ctx, url, digest, scope, part(source, 0, size), opts.signal);
    } else {
      for (let offset = 0; offset < size; offset += chunkSize) {
        url = await patch(ctx, url, scope, part(source, offset, Math.min(chunkSize, size - offset)), opts.signal);
      }
      await finish(ctx, url, digest, scope, undefined, opts.signal);
    }
  } catch (err) {
    await cancel(ctx, url, scope);
    throw err;
  }
  return { outcome: "uploaded" };
}

async function patch(ctx: ClientContext, url: URL, scope: string, p: Part, signal: AbortSignal | undefined): Promise<URL> {
  const what = describeRequest("PATCH", url);
  const end = p.offset + p.length - 1;
  return ctx.transport.execute(
    {
      method: "PATCH",
      url,
      headers: { "content-type": "application/octet-stream", "content-range": `${p.offset}-${end}`, "content-length": String(p.length) },
      body: p.body,
      scope,
      expect: [202],
      retry: false,
      signal,
    },
    async (res) => {
      await discard(res.body);
      const range = headerValue(res.headers["range"]);
      const m = range === undefined ? null : /^(?:bytes=)?0-(\d+)$/.exec(range.trim());
      if (range !== undefined && (!m || Number(m[1]) !== end)) {
        throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: registry has ${range}, expected 0-${end}`);
      }
      return location(res, what);
    },
  );
}

async function finish(ctx: ClientContext, url: URL, digest: string, scope: string, p: Part | undefined, signal: AbortSignal | undefined): Promise<void> {
  const target = withDigest(url, digest);
  const what = describeRequest("PUT", target);
  await ctx.transport.execute(
    {
      method: "PUT",
      url: target,
      headers: { "content-type": "application/octet-stream", "content-length": String(p?.length ?? 0) },
      ...(p ? { body: p.body } : {}),
      scope,
      expect: [201, 204],
      retry: false,
      signal,
    },
    async (res) => {
      await discard(res.body);
      const stored = headerValue(res.headers["docker-content-digest"]);
      if (stored !== undefined && stored !== digest) {
        throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${what}: registry stored ${stored}, expected ${digest}`);
      }
    },
  );
}

/** Best effort: tell the registry to drop a failed upload session. */
/**
 * Mounts blob `digest` from repository `from` into `repository` of the same
 * registry, without uploading anything: true when the registry mounted it
 * (201), false when it could not (it opened an upload session instead, which
 * is cancelled). Lets a caller skip downloading a blob it would only push back.
 */
export async function mountBlob(ctx: ClientContext, repository: string, digest: string, from: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
  assertRepository(repository);
  assertRepository(from);
  assertDigest(digest);
  if (from === repository) return false;
  const opened = await openUpload(ctx, repository, digest, from, opts.signal);
  if (opened.status === 201) return true;
  await cancel(ctx, opened.url!, opened.scope);
  return false;
}

async function cancel(ctx: ClientContext, url: URL, scope: string): Promise<void> {
  try {
    await ctx.transport.execute({ method: "DELETE", url, scope, expect: [204, 404], retry: false }, async (res) => discard(res.body));
  } catch {
    // the registry purges abandoned uploads itself
  }
}
