// The `shoal` command line. Each command lives in its own file; this wires them.
import { Command } from "commander";
import { registerAgent, registerMountCommands } from "./agent-commands.ts";
import { registerContainerdConfig, registerPull } from "./containerd-commands.ts";
import { versionLine } from "./build-info.ts";
import { registerConvert } from "./convert.ts";
import { registerMirrorConfig } from "./mirror-config.ts";
import { registerFuseKeeper } from "./keeper-command.ts";
import { registerCat, registerLs } from "./read.ts";
import { registerPreheat, registerSupernode } from "./supernode-commands.ts";

/** Every command of `shoal`, ready to parse (loading a command's code waits until it runs). */
export function buildProgram(): Command {
  const program = new Command()
    .name("shoal")
    .description("Peer-to-peer distribution and lazy loading of container images")
    .showHelpAfterError()
    .exitOverride((err) => process.exit(err.exitCode))
    .option("-V, --version", "print the version and the commit it was built from")
    .on("option:version", () => {
      process.stdout.write(`${versionLine()}\n`);
      process.exit(0);
    });
  registerConvert(program);
  registerLs(program);
  registerCat(program);
  registerAgent(program);
  registerMountCommands(program);
  registerFuseKeeper(program);
  registerSupernode(program);
  registerPreheat(program);
  registerPull(program);
  registerContainerdConfig(program);
  registerMirrorConfig(program);
  return program;
}

/**
 * The CLI reference in Markdown (docs/cli.md), made from the commands' own
 * help, so that the two cannot disagree.
 */
export function cliReference(): string {
  const program = buildProgram();
  // as a pipe shows it (80 columns), whatever the terminal this runs in
  const help = (c: Command) => c.configureHelp({ ...c.configureHelp(), helpWidth: 80 }).helpInformation().trimEnd();
  const parts = [
    "# The `shoal` command line",
    "",
    "Generated from the commands' own `--help` by `npm run cli-doc`; a test checks that this file matches them.",
    "Every setting of `shoal agent`, `shoal fuse-keeper` and `shoal supernode` is a flag, an environment variable and a key of the",
    "JSON config file (`--config FILE` or `SHOAL_CONFIG`; keys are the flag names), in that order of precedence.",
    "",
    "```",
    help(program),
    "```",
  ];
  for (const c of program.commands) parts.push("", `## shoal ${c.name()}`, "", "```", help(c), "```");
  return `${parts.join("\n")}\n`;
}
