/**
 * The settings schema every shoal daemon uses: each setting has a flag, an
 * environment variable, a config-file key (the flag name), a default and
 * help text, in one place per binary; `resolveSettings` reads them in that
 * order of precedence.
 */
import { InvalidArgumentError } from "@shoal/base";

import { readFileSync } from "node:fs";

/** One setting: its flag, environment variable, config-file key, default and help. */
export interface Setting<T> {
  /** Long flag without dashes, e.g. `prefetch-rate`; also the config file key. */
  flag: string;
  /** Environment variable, e.g. `SHOAL_PREFETCH_RATE`. */
  env: string;
  /** Placeholder for help, e.g. `BYTES_PER_S`; omitted for booleans. */
  arg?: string;
  help: string;
  default: T;
  parse: (raw: string) => T;
}

/** A string setting, as given. */
export function parseString(raw: string): string {
  return raw;
}

/** A comma-separated list (blank entries dropped). */
export function parseList(raw: string): string[] {
  return raw.split(",").map((s) => s.trim()).filter(Boolean);
}

/** Parse `on|off|true|false|1|0|yes|no`. */
export function parseBool(raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (["on", "true", "1", "yes"].includes(v)) return true;
  if (["off", "false", "0", "no"].includes(v)) return false;
  throw new InvalidArgumentError(`not a boolean (on/off): ${JSON.stringify(raw)}`);
}

/** Parse a whole number of at least 1. */
export function parsePositiveInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`not a positive integer: ${raw}`);
  return n;
}

/** Parse a whole number of at least 0. */
export function parseNonNegativeInt(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || String(raw).trim() === "") throw new InvalidArgumentError(`not a whole number: ${raw}`);
  return n;
}

/** Parse `HOST:PORT` (IPv6 in brackets). */
export function parseListen(raw: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):([0-9]{1,5})$/.exec(raw.trim());
  if (!m || Number(m[2]) > 65535) throw new InvalidArgumentError(`not HOST:PORT: ${JSON.stringify(raw)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

/** The values a schema yields. */
export type SettingsOf<S extends Record<string, Setting<unknown>>> = { [K in keyof S]: S[K]["default"] };

/**
 * Resolve every setting of `schema`: a flag given on the command line wins,
 * then the environment variable, then the JSON config file (keys are flag
 * names), then the default. Bad values are `InvalidArgumentError`s naming
 * where they came from.
 */
export function resolveSettings<S extends Record<string, Setting<unknown>>>(
  schema: S,
  flags: Partial<Record<keyof S, string | boolean | undefined>>,
  env: NodeJS.ProcessEnv,
  configFile?: string,
): SettingsOf<S> {
  let file: Record<string, unknown> = {};
  if (configFile) {
    try {
      file = JSON.parse(readFileSync(configFile, "utf8")) as Record<string, unknown>;
    } catch (err) {
      throw new InvalidArgumentError(`cannot read config file ${configFile}: ${(err as Error).message}`, { cause: err });
    }
    const known = new Set(Object.values(schema).map((s) => s.flag));
    for (const key of Object.keys(file)) if (!known.has(key)) throw new InvalidArgumentError(`config file ${configFile}: unknown setting ${JSON.stringify(key)}`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(schema)) {
    const flag = flags[key as keyof S];
    const candidates: Array<[string, unknown]> = [
      [`--${s.flag}`, flag],
      [`$${s.env}`, env[s.env]],
      [`${configFile}: ${s.flag}`, file[s.flag]],
    ];
    const found = candidates.find(([, v]) => v !== undefined && v !== "");
    if (!found) {
      out[key] = s.default;
      continue;
    }
    const [where, value] = found;
    try {
      out[key] = typeof value === "boolean" ? value : s.parse(String(value));
    } catch (err) {
      throw new InvalidArgumentError(`${where}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out as SettingsOf<S>;
}
