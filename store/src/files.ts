import { randomBytes } from "node:crypto";
import { unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";

/** The errno `code` of a Node.js system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string") return err.code;
  return undefined;
}

/** True for "file system full" errors (ENOSPC, EDQUOT), including LevelDB's IO errors that say so. */
export function isNoSpace(err: unknown): boolean {
  const code = errnoCode(err);
  if (code === "ENOSPC" || code === "EDQUOT") return true;
  const seen = new Set<unknown>();
  for (let e: unknown = err; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    if (/no space left on device|disk quota exceeded/i.test(e.message)) return true;
    if (e !== err && (errnoCode(e) === "ENOSPC" || errnoCode(e) === "EDQUOT")) return true;
  }
  return false;
}

/** A fresh temp path beside `finalPath` (same directory, so `rename` is atomic). */
export function tempPathFor(finalPath: string): string {
  return `${finalPath}.tmp-${randomBytes(6).toString("hex")}`;
}

/** True if `name` is a temp file left by `tempPathFor`. */
export function isTempName(name: string): boolean {
  return /\.tmp-[0-9a-f]+$/.test(name);
}

/** Unlink each path, ignoring ones that do not exist; other errors are returned, not thrown. */
export async function unlinkQuiet(...paths: string[]): Promise<unknown[]> {
  const errors: unknown[] = [];
  await Promise.all(
    paths.map(async (p) => {
      try {
        await unlink(p);
      } catch (err) {
        if (errnoCode(err) !== "ENOENT") errors.push(err);
      }
    }),
  );
  return errors;
}

/**
 * Read up to `length` bytes at `position` into a new buffer, looping over
 * short reads. Returns fewer bytes only if the file ends first.
 */
export async function readAt(handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Run `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** True for a non-negative safe integer (an offset or a length). */
export function isCount(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

