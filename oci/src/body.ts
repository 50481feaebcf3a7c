/** Reading HTTP response bodies with limits. */
import type { Readable } from "node:stream";

/**
 * Reads all of `body` into one array. If more than `limit` bytes arrive the
 * body is destroyed (closing the connection) and `tooLarge()` is thrown; the
 * rest is never read. `onPiece(piece, at)` sees each piece as it arrives,
 * `at` its offset in the body.
 */
export async function readLimited(body: Readable, limit: number, tooLarge: () => Error, onPiece?: (piece: Uint8Array, at: number) => void): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      if (total + chunk.length > limit) throw tooLarge();
      onPiece?.(chunk, total);
      total += chunk.length;
      chunks.push(chunk);
    }
  } catch (err) {
    closeBody(body);
    throw err;
  }
  return concat(chunks, total);
}

/**
 * Closes a body we will not read (the connection is dropped). undici reports
 * a destroyed unfinished body as an 'error' event; that is expected here, so
 * it is swallowed instead of crashing the process.
 */
export function closeBody(body: Readable): void {
  if (body.destroyed) return;
  body.on("error", () => {});
  body.destroy();
}

/** Concatenates `chunks` (of `total` bytes together). */
export function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Discards a body without reading more than `limit` bytes (then closes the connection). Never throws. */
export async function discard(body: Readable & { dump?: (opts?: { limit: number }) => Promise<void> }, limit = 64 * 1024): Promise<void> {
  try {
    if (body.dump) await body.dump({ limit });
    else closeBody(body);
  } catch {
    closeBody(body);
  }
}

/** A header's single value (first of several), or `undefined`. */
export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * At most `max` bytes of a fetch `Response`'s body, read as it streams: past
 * `max` the rest is never read (the body is cancelled) and `cut` is true, so
 * no peer's answer is held whole in memory before its size is known.
 */
export async function readResponseUpTo(res: Response, max: number): Promise<{ bytes: Buffer; cut: boolean }> {
  if (!res.body) return { bytes: Buffer.alloc(0), cut: false };
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { bytes: Buffer.concat(parts), cut: false };
      if (size + value.length > max) {
        parts.push(value.subarray(0, max - size));
        await reader.cancel().catch(() => undefined);
        return { bytes: Buffer.concat(parts), cut: true };
      }
      parts.push(value);
      size += value.length;
    }
  } finally {
    reader.releaseLock();
  }
}
