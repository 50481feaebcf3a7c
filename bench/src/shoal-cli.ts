// What the benches share for driving shoal: the testkit's one way to run it, with the
// entry point a bench was told to use (`--cli PATH`, to compare another checkout), and layer sizes.
import { freePort, runShoal, runShoalOk, SHOAL_MAIN, startShoal, type Netns, type NetnsRegistry, type Readiness, type ShoalDaemon } from "@shoal/testkit";
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

/** What `shoal status --json` of the agent at `root` says it fetched (chunk bytes from anywhere but its store), and of its first image. */
export async function agentFetched(cliOk: (args: string[]) => Promise<string>, root: string): Promise<{ bytes: number; startup?: string; startupChunks?: number; digest?: string; requests?: number; blockLayers?: number }> {
  const s = JSON.parse(await cliOk(["status", "--root", root, "--json"])) as {
    sources?: Record<string, { bytes: number }>; images?: Array<{ digest: string; startup?: string; prefetch?: { startupChunks: number } }>;
    layers?: { requests: number; block: number };
  };
  const bytes = Object.entries(s.sources ?? {}).filter(([k]) => k !== "cache").reduce((n, [, v]) => n + v.bytes, 0);
  const img = s.images?.[0];
  return {
    bytes, ...(img?.startup !== undefined ? { startup: img.startup } : {}),
    ...(img?.prefetch?.startupChunks !== undefined ? { startupChunks: img.prefetch.startupChunks } : {}), ...(img?.digest ? { digest: img.digest } : {}),
    ...(s.layers ? { requests: s.layers.requests, blockLayers: s.layers.block } : {}),
  };
}

/**
 * Start `shoal supernode` for `reg` with its state in `dir`: inside the
 * registry's namespace (`ns`, at `ns.nsAddr:7070`, so what agents ask of it
 * crosses the capped link), or on this host's loopback.
 */
export async function startBenchSupernode(daemon: ReturnType<typeof shoalCli>["daemon"], reg: NetnsRegistry, dir: string, ns?: Netns): Promise<{ url: string; daemon: ShoalDaemon }> {
  const host = ns ? ns.nsAddr : "127.0.0.1";
  const port = ns ? 7070 : await freePort();
  const d = await daemon(["supernode", "--root", dir, "--listen", `${host}:${port}`, "--plain-http", "--registries", reg.host, "--log-level", process.env.SHOAL_BENCH_SUPERNODE_LOG_LEVEL ?? "info"], {
    logFile: `${dir}.log`, ready: { tcp: { host, port } }, timeoutMs: 60_000, ...(ns ? { spawn: (c: string, a: readonly string[], o: SpawnOptions) => ns.spawn(c, a, o) } : {}),
  });
  return { url: `http://${host}:${port}`, daemon: d };
}

/** Wait until the supernode at `supernode` holds the startup trace of `repo@digest` in `reg`; false after `timeoutMs`. */
export async function waitForTrace(supernode: string, reg: NetnsRegistry, repo: string, digest: string, timeoutMs: number): Promise<boolean> {
  const url = `${supernode}/v1/traces/${reg.host}/${repo}/${digest}`;
  const until = performance.now() + timeoutMs;
  while ((await fetch(url).then((r) => r.status, () => 0)) !== 200) {
    if (performance.now() > until) return false;
    await new Promise((r) => setTimeout(r, 500));
  }
  return true;
}
