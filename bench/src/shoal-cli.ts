// What the benches share for driving shoal: the testkit's one way to run it, with the
// entry point a bench was told to use (`--cli PATH`, to compare another checkout), and layer sizes.
import { runShoal, runShoalOk, SHOAL_MAIN, startShoal, type NetnsRegistry, type Readiness, type ShoalDaemon } from "@shoal/testkit";
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { liveProcs } from "./leftovers.ts";

/** This checkout's `shoal` entry point. */
export const DEFAULT_CLI = SHOAL_MAIN;

/** A CLI result: exit code and output. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runners of the shoal CLI at `main`: `cli` resolves with the exit code and
 * output (never rejects on a non-zero exit); `cliOk` resolves stdout and
 * rejects with stderr when the exit code is not 0; `daemon` starts one
 * (agent, supernode) and waits until `ready` answers, its log in `logFile`.
 */
export function shoalCli(main: string = DEFAULT_CLI) {
  return {
    cli: async (args: string[]): Promise<CliResult> => {
      const r = await runShoal(args, { main });
      return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
    },
    cliOk: (args: string[]): Promise<string> => runShoalOk(args, { main }),
    daemon: async (args: string[], opts: { logFile: string; ready: Readiness; timeoutMs?: number; nodeArgs?: readonly string[]; spawn?: (cmd: string, args: readonly string[], o: SpawnOptions) => ChildProcess }): Promise<ShoalDaemon> => {
      const d = await startShoal(args, { ...opts, main });
      liveProcs.add(d.child);
      return d;
    },
  };
}

/** Compressed layer bytes of `repo:tag`'s manifest (single-platform image) in `reg`. */
export async function layerBytes(reg: NetnsRegistry, repo: string, tag: string): Promise<number> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json" },
  });
  if (!res.ok) throw new Error(`manifest ${repo}:${tag}: HTTP ${res.status}`);
  const m = (await res.json()) as { layers?: Array<{ size: number }> };
  return (m.layers ?? []).reduce((n, l) => n + l.size, 0);
}
