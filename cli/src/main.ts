#!/usr/bin/env node
// Entry point of `shoal`: size the libuv pool, turn on Node's compile cache
// (type-stripped modules are cached on disk, which halves start-up), then
// load the program.
import { enableCompileCache } from "node:module";

// The agent inflates chunks and reads its store on libuv's pool while FUSE
// requests wait on them: give the pool room (it must be set before first use).
process.env.UV_THREADPOOL_SIZE ??= "16";
enableCompileCache?.();
await import("./program.ts");
