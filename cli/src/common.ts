import { toShoalError } from "@shoal/base";
import { homedir } from "node:os";
import { join } from "node:path";

/** Options every registry-facing command takes. */
export interface RegistryOptions {
  plainHttp?: boolean;
}

/** Where shoal keeps per-user state (conversion cache): `$XDG_CACHE_HOME/shoal` or `~/.cache/shoal`. */
export function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shoal");
}

/**
 * The CLI's edge of the error set: print one line, `shoal: <message> [<code>]`,
 * and return the exit code, 1. An error that is not a `ShoalError` prints as
 * `SHOAL_ERR_INTERNAL`; `SHOAL_DEBUG=1` adds its stack.
 */
export function reportError(err: unknown): number {
  const e = toShoalError(err);
  process.stderr.write(`shoal: ${e.message} [${e.code}]\n`);
  if (process.env.SHOAL_DEBUG) process.stderr.write(`${(e.cause instanceof Error ? e.cause : e).stack}\n`);
  return 1;
}
