import { parseDuration } from "@shoal/base";
import { parseString, type Setting, type SettingsOf } from "@shoal/service/settings";

/** Every setting of `shoal fuse-keeper`: one schema for flags, environment and config file. */
export const KEEPER_SETTINGS = {
  socket: { flag: "socket", env: "SHOAL_FUSE_KEEPER_SOCKET", arg: "SOCKET", help: "unix socket the agent connects to (the agent starts its keeper on ROOT/fuse-keeper.sock)", default: "/var/lib/shoal/fuse-keeper.sock", parse: parseString },
  hold: { flag: "hold", env: "SHOAL_FUSE_HOLD", arg: "DURATION", help: "how long FUSE requests wait for an agent before they fail with EIO, e.g. 2m; 0 waits for ever", default: 120_000, parse: parseDuration },
  pidFile: { flag: "pid-file", env: "SHOAL_FUSE_KEEPER_PID_FILE", arg: "FILE", help: "write the keeper's pid here", default: "", parse: parseString },
  logLevel: { flag: "log-level", env: "SHOAL_LOG_LEVEL", arg: "LEVEL", help: "pino log level (trace, debug, info, warn, error)", default: "info", parse: parseString },
} satisfies Record<string, Setting<unknown>>;

/** Resolved settings of the FUSE keeper. */
export type KeeperConfig = SettingsOf<typeof KEEPER_SETTINGS>;
