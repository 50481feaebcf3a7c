// What `shoal agent` and `shoal supernode` share: options generated from a
// settings schema, their resolution, and a graceful stop on SIGINT/SIGTERM.
import { humanBytes } from "@shoal/base";
import { Option, type Command } from "commander";
import type { Logger } from "pino";
import { resolveSettings, type Setting, type SettingsOf } from "@shoal/service/settings";

/** The attribute name commander gives a long flag. */
export function camelCase(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** The " (default: ...)" part of a setting's help: nothing for no default or an empty list, rates in bytes and human units. */
function defaultText(s: Setting<unknown>): string {
  const d = s.default;
  if (d === undefined || (Array.isArray(d) && d.length === 0)) return "";
  if (typeof d === "number" && s.flag.includes("rate")) return ` (default: ${d} = ${humanBytes(d)}/s)`;
  return ` (default: ${typeof d === "object" ? JSON.stringify(d) : String(d)})`;
}

/**
 * Add one option per setting (its flag, its env variable and default in the
 * help) and `--config FILE` to `cmd`; `run` gets the settings resolved from
 * flags, then SHOAL_* env, then the config file, then defaults.
 */
export function settingsCommand<S extends Record<string, Setting<unknown>>>(cmd: Command, settings: S, run: (config: SettingsOf<S>) => Promise<void>): Command {
  for (const s of Object.values(settings)) {
    const isBool = typeof s.default === "boolean" && !s.arg;
    cmd.addOption(new Option(isBool ? `--${s.flag}` : `--${s.flag} <${s.arg ?? "value"}>`, `${s.help}; env ${s.env}${defaultText(s)}`));
  }
  cmd.option("--config <file>", "JSON config file whose keys are the flag names; env SHOAL_CONFIG");
  return cmd.action(async (flags: Record<string, string | boolean | undefined> & { config?: string }) => {
    // commander names each option after its flag, in camelCase (--prefetch-rate -> prefetchRate)
    const given = Object.fromEntries(Object.entries(settings).map(([k, s]) => [k, flags[camelCase(s.flag)]])) as Partial<Record<keyof S, string | boolean | undefined>>;
    await run(resolveSettings(settings, given, process.env, flags.config ?? process.env.SHOAL_CONFIG));
  });
}

/** On the first SIGINT or SIGTERM: log it, `close()`, then exit 0 (1 if closing failed). */
export function stopOnSignals(logger: Logger, close: () => Promise<void>): void {
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, "stopping");
    close().then(
      () => process.exit(0),
      (err: Error) => {
        logger.error({ err }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}
