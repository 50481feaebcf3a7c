// The `shoal` command line. Each command lives in its own file; this wires them.
import { Command } from "commander";
import { registerConvert } from "./convert.ts";
import { registerLs, registerCat } from "./read.ts";
import { reportError } from "./common.ts";
import { registerAgent, registerMountCommands } from "./agent-commands.ts";
import { registerPreheat, registerSupernode } from "./supernode-commands.ts";

const program = new Command()
  .name("shoal")
  .description("Peer-to-peer distribution and lazy loading of container images")
  .showHelpAfterError()
  .exitOverride((err) => process.exit(err.exitCode));

registerConvert(program);
registerLs(program);
registerCat(program);
registerAgent(program);
registerMountCommands(program);
registerSupernode(program);
registerPreheat(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // exit now: a daemon that failed half-way may hold handles open
  process.exit(reportError(err));
}
