/**
 * containerd from Debian, started by a test with its own config, root,
 * state and sockets under a directory (nothing of the host's containerd is
 * touched), and stopped with everything it mounted there.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { unmountAllUnder } from "./mounts.ts";

const run = promisify(execFile);

/** A running containerd. */
export interface RunningContainerd {
  /** Its gRPC socket (`ctr --address`). */
  readonly address: string;
  readonly dir: string;
  /** The current containerd process. */
  readonly child: ChildProcess;
  logs(): string;
  /** SIGTERM, wait, and start it again with the same config and state (containers and mounts stay, as in a service restart). */
  restart(): Promise<void>;
  /** SIGTERM, wait, and unmount what it left under its directory. */
  stop(): Promise<void>;
}

/** Options of `startContainerd`. */
export interface ContainerdOptions {
  /** Proxy snapshotter plugins: name → unix socket. */
  snapshotters?: Record<string, string>;
  /** The CRI plugin's snapshotter (default: containerd's overlayfs). */
  criSnapshotter?: string;
  /** The CRI plugin's pause image (`sandbox_image`), pulled at the first RunPodSandbox. */
  criSandboxImage?: string;
  /** A hosts.toml directory for the CRI plugin's registries (`config_path`). */
  criRegistryConfigPath?: string;
  /** More TOML, appended. */
  extra?: string;
}

const live = new Set<ChildProcess>();
let hooked = false;

/** Start containerd in `dir`; resolves once `ctr version` answers on its socket. */
export async function startContainerd(dir: string, opts: ContainerdOptions = {}): Promise<RunningContainerd> {
  mkdirSync(dir, { recursive: true });
  const address = join(dir, "containerd.sock");
  const config = join(dir, "config.toml");
  const lines = [
    "version = 2",
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    "[grpc]", `  address = "${address}"`,
    "[ttrpc]", `  address = "${address}.ttrpc"`,
    "[debug]", '  address = ""', '  level = "info"',
    "[metrics]", '  address = ""',
  ];
  for (const [name, socket] of Object.entries(opts.snapshotters ?? {})) {
    lines.push(`[proxy_plugins.${name}]`, '  type = "snapshot"', `  address = "${socket}"`);
  }
  lines.push('[plugins."io.containerd.grpc.v1.cri"]', "  disable_tcp_service = true", '  stream_server_address = "127.0.0.1"', '  stream_server_port = "0"');
  // a pod's pause container asks for oom_score_adj -998, which a process less privileged may not set: no lower than containerd's own
  lines.push("  restrict_oom_score_adj = true");
  if (opts.criSandboxImage) lines.push(`  sandbox_image = "${opts.criSandboxImage}"`);
  lines.push('[plugins."io.containerd.grpc.v1.cri".containerd]', `  snapshotter = "${opts.criSnapshotter ?? "overlayfs"}"`, "  disable_snapshot_annotations = false");
  if (opts.criRegistryConfigPath) lines.push('[plugins."io.containerd.grpc.v1.cri".registry]', `  config_path = "${opts.criRegistryConfigPath}"`);
  if (opts.extra) lines.push(opts.extra);
  await writeFile(config, `${lines.join("\n")}\n`);
  const logFile = join(dir, "containerd.log");
  const logs = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  let child = await spawnContainerd(config, address, logFile, logs);
  const terminate = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await new Promise((r) => child.once("exit", r));
    clearTimeout(t);
  };
  return {
    address, dir, logs,
    get child() {
      return child;
    },
    async restart() {
      await terminate();
      child = await spawnContainerd(config, address, logFile, logs);
    },
    async stop() {
      await terminate();
      await unmountAllUnder(dir);
    },
  };
}

/** Start containerd with `config`; resolves once `ctr version` answers on `address`. */
async function spawnContainerd(config: string, address: string, logFile: string, logs: () => string): Promise<ChildProcess> {
  const fd = openSync(logFile, "a");
  const child = spawn("containerd", ["--config", config], { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.on("exit", () => {
      for (const c of live) if (c.pid && c.exitCode === null) try { process.kill(c.pid, "SIGKILL"); } catch { /* gone */ }
    });
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited (${child.exitCode}):\n${logs().slice(-4000)}`);
    if (await run("ctr", ["--address", address, "version"]).then(() => true, () => false)) return child;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`containerd did not answer in 30 s:\n${logs().slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
