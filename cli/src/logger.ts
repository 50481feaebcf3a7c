import { pino, type Logger } from "pino";

/**
 * The CLI's one pino logger, on stderr. Level from `SHOAL_LOG_LEVEL`
 * (default `warn` for commands, so stdout stays the command's output).
 */
export function cliLogger(level = process.env.SHOAL_LOG_LEVEL ?? "warn"): Logger {
  return pino({ level, base: { component: "cli" } }, pino.destination(2));
}

/**
 * A daemon's pino logger, on stdout (the journal, under systemd). Loaded
 * through this module rather than `import("pino")`, whose CommonJS exports a
 * bundle's dynamic import would not name.
 */
export function daemonLogger(level: string, component: string): Logger {
  return pino({ level, base: { component } });
}
