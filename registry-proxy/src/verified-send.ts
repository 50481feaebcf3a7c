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
 */
import { once } from "node:events";
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import { AbortedError, DigestMismatchError, ShoalError } from "@shoal/base";

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
 * Write the blob's bytes to `res` (whose headers the caller has written)
 * from the first source that serves them, resuming with the next on a
 * failure. Resolves when the response ended with the verified blob; throws
 * (after destroying `res` if bytes were sent) when no source completes it,
 * or `DigestMismatchError` when the bytes do not match.
 */
export async function sendVerified(res: ServerResponse, sources: readonly BlobSource[], digest: string, size: number, signal: AbortSignal): Promise<SendReport> {
  if (size <= WHOLE_CHECK_BYTES) return sendSmall(res, sources, digest, size, signal);
  const hash = createHash("sha256");
  const report: SendReport = { bytes: {}, failures: [] };
  let received = 0;
  let held: Uint8Array | undefined;
  const write = async (piece: Uint8Array) => {
    if (!res.write(piece)) await Promise.race([once(res, "drain"), once(res, "close")]);
    if (res.destroyed) throw new AbortedError("the engine went away");
  };
  try {
    for (const source of sources) {
      if (received === size) break;
      try {
        for await (const piece of await source.open(received, signal)) {
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
        if (signal.aborted || res.destroyed) throw err;
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
    res.destroy();
    throw err;
  }
}

/** Blobs up to this size are verified whole before they are sent, bytes. */
export const WHOLE_CHECK_BYTES = 1024 * 1024;

/** A small blob: from the first source whose whole bytes match, then sent at once. */
async function sendSmall(res: ServerResponse, sources: readonly BlobSource[], digest: string, size: number, signal: AbortSignal): Promise<SendReport> {
  const report: SendReport = { bytes: {}, failures: [] };
  for (const source of sources) {
    try {
      const pieces: Uint8Array[] = [];
      let n = 0;
      for await (const piece of await source.open(0, signal)) {
        n += piece.length;
        if (n > size) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `${source.name} sent more than the blob's ${size} bytes`);
        pieces.push(piece);
      }
      const bytes = Buffer.concat(pieces);
      const got = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      if (bytes.length !== size || got !== digest) throw new DigestMismatchError(`blob ${digest} from ${source.name}`, digest, got);
      report.bytes[source.name] = size;
      res.end(bytes);
      return report;
    } catch (err) {
      if (signal.aborted) throw err;
      report.failures.push({ source: source.name, error: (err as Error).message });
    }
  }
  res.destroy();
  const mismatch = report.failures.some((f) => f.error.includes("digest mismatch"));
  throw new ShoalError(mismatch ? "SHOAL_ERR_DIGEST_MISMATCH" : "SHOAL_ERR_REGISTRY_UNAVAILABLE", `no source served blob ${digest} whole and right: ${report.failures.map((f) => `${f.source}: ${f.error}`).join("; ")}`);
}
