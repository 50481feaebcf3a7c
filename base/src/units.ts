/** Byte counts and durations as people write them, and as shoal prints them. */
import { InvalidArgumentError } from "./errors.ts";

const BYTE_UNITS: Readonly<Record<string, number>> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/**
 * A byte count: digits (a decimal fraction allowed) and an optional k/M/G/T
 * suffix in powers of 1024, optionally followed by `B` or `iB`: `512`,
 * `256k`, `1.5G`, `10GiB`. The result is rounded down to a whole byte.
 * Throws `InvalidArgumentError` for anything else.
 */
export function parseBytes(raw: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kKmMgGtT]?)(?:i?[bB])?$/.exec(String(raw).trim());
  if (!m) throw new InvalidArgumentError(`not a byte count: ${JSON.stringify(raw)}`);
  return Math.floor(Number(m[1]) * BYTE_UNITS[m[2]!.toLowerCase()]!);
}

/** A duration in ms: a number and an optional unit (`ms`, the default, `s`, `m`), e.g. `20s`. Throws `InvalidArgumentError`. */
export function parseDuration(raw: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m)?$/.exec(String(raw).trim());
  if (!m) throw new InvalidArgumentError(`not a duration: ${JSON.stringify(raw)}`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] ?? "ms"]!);
}

/** `n` bytes for people: `512 B`, `1.5 MiB` (one decimal beyond bytes). */
export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
