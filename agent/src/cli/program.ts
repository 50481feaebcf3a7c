// The `shoal` command line. Each command lives in its own file; this wires them.
import { Command } from "commander";
import { registerConvert } from "./convert.ts";
import { registerLs, registerCat } from "./read.ts";
import { reportError } from "./common.ts";
import { registerAgent, registerMountCommands } from "./agent-commands.ts";

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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
