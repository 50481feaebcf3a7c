// What the benches share for driving shoal: its CLI, agent sockets, layer sizes.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { socketAccepts, type NetnsRegistry } from "@shoal/testkit";

/** Agent sockets: the benches wait for one to accept before calling it. */
export { socketAccepts };

/** The repository's `shoal` entry point, run with this Node. */
export const DEFAULT_CLI = fileURLToPath(new URL("../../agent/src/cli/main.ts", import.meta.url));

/** A CLI result: exit code and output. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runners of the shoal CLI at `cliPath`: `cli` resolves with the exit code
 * and output (never rejects on a non-zero exit); `cliOk` resolves stdout and
 * rejects with stderr when the exit code is not 0. Asynchronous on purpose:
 * a bench must keep reading its registries' log pipes.
 */
export function shoalCli(cliPath: string = DEFAULT_CLI): { cli: (args: string[]) => Promise<CliResult>; cliOk: (args: string[]) => Promise<string> } {
  const cli = (args: string[]) => new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    child.once("error", reject);
    child.once("close", (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
  });
  const cliOk = async (args: string[]) => {
    const r = await cli(args);
    if (r.code !== 0) throw new Error(`shoal ${args.join(" ")} failed (${r.code}):\n${r.stderr.trim()}`);
    return r.stdout;
  };
  return { cli, cliOk };
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
