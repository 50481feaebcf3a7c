#!/usr/bin/env node
// Entry point of `shoal`: turn on Node's compile cache (type-stripped modules
// are cached on disk, which halves start-up), then load the program.
import { enableCompileCache } from "node:module";

enableCompileCache?.();
await import("./program.ts");
