import { homedir } from "node:os";
import { join } from "node:path";
import { ShoalError } from "@shoal/blockindex";

/** Options every registry-facing command takes. */
export interface RegistryOptions {
  plainHttp?: boolean;
}

/** Where shoal keeps per-user state (conversion cache): `$XDG_CACHE_HOME/shoal` or `~/.cache/shoal`. */
export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shoal");
}

/** Print an error for a person and return the exit code. Typed errors show their code; others their stack only with SHOAL_DEBUG. */
export function reportError(err: unknown): number {
  if (err instanceof ShoalError) {
    process.stderr.write(`shoal: ${err.message} [${err.code}]\n`);
    return 1;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`shoal: ${e.message}\n`);
  if (process.env.SHOAL_DEBUG) process.stderr.write(`${e.stack}\n`);
  return 1;
}

/** Parse a positive integer flag value, with a unit suffix (k, M, G: powers of 1024). */
export function parseBytes(v: string): number {
  const m = /^([0-9]+)([kKmMgG]?)(i?[bB])?$/.exec(v.trim());
  if (!m) throw new ShoalError("SHOAL_ERR_INVALID_ARGUMENT", `not a byte count: ${JSON.stringify(v)}`);
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase()]!;
  return Number(m[1]) * mult;
}
