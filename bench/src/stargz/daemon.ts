// Running the bench's stargz snapshotter daemon (see main.go and build.ts): a fresh root
// (empty cache), a config that names the registries it reaches over plain HTTP, and its
// socket for containerd's `[proxy_plugins.stargz]`.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { socketAccepts, unmountAllUnder, waitFor } from "@shoal/testkit";
import { liveMountRoots, liveProcs, stopProcess } from "../leftovers.ts";

/** Options of {@link startStargzSnapshotter}. */
export interface StargzDaemonOptions {
  /** The daemon binary ({@link buildStargzSnapshotter}). */
  binary: string;
  /** Its root: snapshots, FUSE mounts and the layer cache. Created; should be empty. */
  root: string;
  /** Registries (`HOST:PORT`) reached over plain HTTP, and only there. */
  plainHttpHosts: readonly string[];
  /** More TOML for the daemon's config (fs options, top level), e.g. `no_background_fetch = true`. */
  extraConfig?: string;
  /** Default `SHOAL_BENCH_STARGZ_LOG_LEVEL`, else "warn". */
  logLevel?: string;
}

/** A running daemon. */
export interface StargzDaemon {
  /** Its gRPC socket, for containerd's proxy plugin. */
  readonly socket: string;
  readonly child: ChildProcess;
  /** The config file it was started with. */
  readonly config: string;
  logs(): string;
  /** SIGTERM (the daemon closes the snapshotter and detaches its mounts), SIGKILL after 15 s, then unmount what is left under the root. */
  stop(): Promise<void>;
}

/**
 * The daemon's config.toml: each plain-HTTP registry as its own mirror with
 * `insecure = true` (the stargz resolver then asks it over http://, and falls
 * back only to https:// of the same host).
 */
export function stargzConfig(plainHttpHosts: readonly string[], extra = ""): string {
  const lines = ["# written by the shoal containerd bench"];
  if (extra) lines.push(extra.trim());
  for (const h of plainHttpHosts) lines.push(`[[resolver.host."${h}".mirrors]]`, `  host = "${h}"`, "  insecure = true");
  return `${lines.join("\n")}\n`;
}

/** Starts the daemon on `<root>/stargz.sock` and resolves once the socket accepts. */
export async function startStargzSnapshotter(opts: StargzDaemonOptions): Promise<StargzDaemon> {
  await mkdir(opts.root, { recursive: true });
  liveMountRoots.add(opts.root);
  const socket = join(opts.root, "stargz.sock");
  const config = join(opts.root, "config.toml");
  const logFile = join(opts.root, "daemon.log");
  await writeFile(config, stargzConfig(opts.plainHttpHosts, opts.extraConfig));
  const logLevel = opts.logLevel ?? process.env.SHOAL_BENCH_STARGZ_LOG_LEVEL ?? "warn";
  const fd = openSync(logFile, "a");
  const child = spawn(opts.binary, ["--address", socket, "--config", config, "--root", opts.root, "--log-level", logLevel], { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  liveProcs.add(child);
  const logs = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const stop = async () => {
    await stopProcess(child, 15_000);
    await unmountAllUnder(opts.root);
  };
  try {
    await waitFor("the stargz snapshotter's socket", async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the stargz snapshotter exited (${child.exitCode ?? child.signalCode}):\n${logs().slice(-4000)}`);
      return (await socketAccepts(socket)) ? true : undefined;
    }, 30_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { socket, child, config, logs, stop };
}
