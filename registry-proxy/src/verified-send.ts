/**
 * Send a blob to an engine from a list of sources, verified: every byte is
 * hashed on its way, and the last piece is held back until the whole blob
 * matches its digest and size. A blob that turns out wrong is cut off
 * before its last byte (the response is destroyed), so the engine never
 * receives a complete response with bad bytes and its own digest check and
 * retry take over. A source that fails mid-blob hands over to the next one
 * at the offset reached (`from`), so a dying supernode costs a resumed
 * range from the origin, not a failed pull. Memory per transfer: one piece.
 * Blobs of at most `WHOLE_CHECK_BYTES` (configs, small layers) are instead
 * checked whole before their first byte goes out, so a bad source among
 * them costs nothing: the next source serves them.
 *
 * The response's head is written (`head()`) just before its first byte, so
 * a transfer that fails before then leaves `res` untouched, for the caller
 * to answer with an error status.
 */
import { once } from "node:events";
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { AbortedError, DigestMismatchError, ShoalError, untilAborted } from "@shoal/base";

/** One place to read a blob from: bytes `[from, size)` as a stream of pieces. */
export interface BlobSource {
  /** For logs and metrics: `supernode`, `origin`, ... */
  readonly name: string;
  open(from: number, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>>;
}

/** How a transfer went: bytes per source, and the sources that failed (with why). */
export interface SendReport {
  bytes: Record<string, number>;
  failures: Array<{ source: string; error: string }>;
}

/**
 * Write the blob's bytes to `res` from the first source that serves them,
 * resuming with the next on a failure; `head()` writes the response's head
 * and is called once, just before the first byte. Resolves when the
 * response ended with the verified blob; throws when no source completes
 * it, or `DigestMismatchError` when the bytes do not match, after
 * destroying `res` if its head was written (else leaving it untouched). An
 * aborted `signal` throws its reason.
 */
export async function sendVerified(res: ServerResponse, sources: readonly BlobSource[], digest: string, size: number, signal: AbortSignal, head: () => void): Promise<SendReport> {
  if (size <= WHOLE_CHECK_BYTES) return sendSmall(res, sources, digest, size, signal, head);
  const last = sources.at(-1);
  const hash = createHash("sha256");
  const report: SendReport = { bytes: {}, failures: [] };
  let received = 0;
  let held: Uint8Array | undefined;
  let started = false;
  const write = async (piece: Uint8Array) => {
    if (!started) {
      started = true;
      head();
    }
    if (!res.write(piece)) await drainedOrClosed(res);
    if (res.destroyed) throw new AbortedError("the engine went away");
  };
  try {
    for (const source of sources) {
      if (received === size) break;
      try {
        for await (const piece of piecesOf(source, received, signal, source === last ? undefined : SOURCE_START_MS)) {
          if (piece.length === 0) continue;
          if (received + piece.length > size) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `${source.name} sent more than the blob's ${size} bytes`);
          hash.update(piece);
          received += piece.length;
          report.bytes[source.name] = (report.bytes[source.name] ?? 0) + piece.length;
          if (held) await write(held);
          held = piece;
        }
        if (received < size) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `${source.name} ended the blob at ${received} of ${size} bytes`);
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        if (res.destroyed) throw err;
        report.failures.push({ source: source.name, error: (err as Error).message });
      }
    }
    if (received < size) throw new ShoalError("SHOAL_ERR_REGISTRY_UNAVAILABLE", `no source served blob ${digest} to the end (${received} of ${size} bytes): ${report.failures.map((f) => `${f.source}: ${f.error}`).join("; ")}`);
    const got = `sha256:${hash.digest("hex")}`;
    if (got !== digest) throw new DigestMismatchError(`blob ${digest}`, digest, got);
    if (held) await write(held);
    res.end();
    return report;
  } catch (err) {
    if (started) res.destroy();
    throw err;
  }
}

/** Blobs up to this size are verified whole before they are sent, bytes. */
export const WHOLE_CHECK_BYTES = 1024 * 1024;

/**
 * How long a source other than the last may take to deliver its first
 * piece before the next one is asked, ms. A
 * source stuck behind a frozen registry must not eat the engine's wait.
 */
export const SOURCE_START_MS = 2_000;

/** `source`'s pieces from `from`; the first within `startMs` (undefined: no bound), else `SHOAL_ERR_TIMEOUT` and the source is left behind. */
async function* piecesOf(source: BlobSource, from: number, signal: AbortSignal, startMs: number | undefined): AsyncGenerator<Uint8Array> {
  const slow = new AbortController();
  const timer = startMs === undefined ? undefined : setTimeout(() => slow.abort(new ShoalError("SHOAL_ERR_TIMEOUT", `${source.name} did not begin within ${startMs} ms`)), startMs);
  const bounded = AbortSignal.any([signal, slow.signal]);
  try {
    const pieces = (await untilAborted(source.open(from, bounded), bounded))[Symbol.asyncIterator]();
    for (;;) {
      const next = timer === undefined ? pieces.next() : untilAborted(pieces.next(), bounded);
      const r = await next.catch((err: unknown) => {
        if (slow.signal.aborted) void pieces.return?.().catch(() => undefined);
        throw err;
      });
      if (r.done) return;
      clearTimeout(timer);
      yield r.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Until `res` drained or closed, leaving no listener behind. */
async function drainedOrClosed(res: ServerResponse): Promise<void> {
  const done = new AbortController();
  try {
    await Promise.race([once(res, "drain", { signal: done.signal }), once(res, "close", { signal: done.signal })]);
  } finally {
    done.abort();
  }
}

/** A small blob: from the first source whose whole bytes match, then sent at once. */
async function sendSmall(res: ServerResponse, sources: readonly BlobSource[], digest: string, size: number, signal: AbortSignal, head: () => void): Promise<SendReport> {
  const report: SendReport = { bytes: {}, failures: [] };
  for (const source of sources) {
    try {
      const pieces: Uint8Array[] = [];
      let n = 0;
      for await (const piece of piecesOf(source, 0, signal, source === sources.at(-1) ? undefined : SOURCE_START_MS)) {
        n += piece.length;
        if (n > size) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `${source.name} sent more than the blob's ${size} bytes`);
        pieces.push(piece);
      }
      const bytes = Buffer.concat(pieces);
      const got = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      if (bytes.length !== size || got !== digest) throw new DigestMismatchError(`blob ${digest} from ${source.name}`, digest, got);
      report.bytes[source.name] = size;
      head();
      res.end(bytes);
      return report;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      report.failures.push({ source: source.name, error: (err as Error).message });
    }
  }
  const mismatch = report.failures.some((f) => f.error.includes("digest mismatch"));
  throw new ShoalError(mismatch ? "SHOAL_ERR_DIGEST_MISMATCH" : "SHOAL_ERR_REGISTRY_UNAVAILABLE", `no source served blob ${digest} whole and right: ${report.failures.map((f) => `${f.source}: ${f.error}`).join("; ")}`);
}
