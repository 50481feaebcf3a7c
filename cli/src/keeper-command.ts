import type { Command } from "commander";
import { KEEPER_SETTINGS } from "@shoal/agent/config";
import { settingsCommand, stopOnSignals } from "./daemon-command.ts";

/** `shoal fuse-keeper`: holds the agent's FUSE connections across agent restarts. */
export function registerFuseKeeper(program: Command): void {
  const cmd = program
    .command("fuse-keeper")
    .description("hold the agent's FUSE connections so that mounts and containers outlive agent restarts (the agent starts it; on SIGTERM it unmounts them all)");
  settingsCommand(cmd, KEEPER_SETTINGS, async (config) => {
    const { daemonLogger } = await import("./logger.ts");
    const { FuseKeeper } = await import("@shoal/agent/keeper");
    const logger = daemonLogger(config.logLevel, "fuse-keeper");
    const keeper = new FuseKeeper({ logger }, { socket: config.socket, holdMs: config.hold, ...(config.pidFile ? { pidFile: config.pidFile } : {}) });
    keeper.onIdle = () => {
      logger.info("no FUSE connection and no agent left; exiting");
      void keeper.stop().then(() => process.exit(0));
    };
    await keeper.start();
    stopOnSignals(logger, () => keeper.stop());
  });
}
