#!/usr/bin/env node
// Entry point of `shoal`: size the libuv pool, turn on Node's compile cache
// (type-stripped modules are cached on disk, which halves start-up), then
// load the program and run it.
import { enableCompileCache } from "node:module";

// The agent inflates chunks and reads its store on libuv's pool while FUSE
// requests wait on them: give the pool room (it must be set before first use).
process.env.UV_THREADPOOL_SIZE ??= "16";
enableCompileCache?.();
const { buildProgram } = await import("./program.ts");
const { reportError } = await import("./common.ts");
try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  // exit now: a daemon that failed half-way may hold handles open
  process.exit(reportError(err));
}
