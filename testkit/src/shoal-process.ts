/**
 * The one way tests, benches and the demo run shoal: the real `shoal` CLI
 * (`@shoal/cli`'s entry point, as `npx shoal` runs it) in a child process of
 * this Node. Short commands are run to completion; daemons are started with
 * their output in a log file (never a pipe: a daemon must not stall because
 * the process that started it is busy) and waited for until they answer.
 * Every daemon started here is killed when this process exits.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { socketAccepts } from "./unix-socket.ts";

/** The `shoal` entry point. */
export const SHOAL_MAIN = fileURLToPath(import.meta.resolve("@shoal/cli/main"));

/** Extra Node flags for every shoal process (e.g. `--cpu-prof`), from `SHOAL_NODE_ARGS`. */
const NODE_ARGS = (process.env.SHOAL_NODE_ARGS ?? "").split(" ").filter(Boolean);

/** What a finished `shoal` command printed. */
export interface ShoalRun {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Options of a run: `main` runs another checkout's entry point (benches compare two). */
export interface ShoalRunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  main?: string;
  /** Working directory (default: this process's). */
  cwd?: string;
}

/**
 * Run `shoal ...args` to completion and capture its output; never rejects on
 * an exit code (`code` 128 for a signal). Asynchronous on purpose: a caller
 * must keep reading its own children's pipes meanwhile.
 */
export function runShoal(args: readonly string[], opts: ShoalRunOptions = {}): Promise<ShoalRun> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [...NODE_ARGS, opts.main ?? SHOAL_MAIN, ...args], {
      encoding: "buffer", maxBuffer: 1 << 30, timeout: opts.timeoutMs ?? 300_000, env: { ...process.env, ...opts.env }, ...(opts.cwd ? { cwd: opts.cwd } : {}),
    }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number" && !err.signal) return reject(err);
      resolve({ code: typeof err?.code === "number" ? err.code : err ? 128 : 0, stdout, stderr: stderr.toString() });
    });
  });
}

/** Run `shoal ...args`; resolves its stdout as text, rejects with its stderr when it exits non-zero. */
export async function runShoalOk(args: readonly string[], opts: ShoalRunOptions = {}): Promise<string> {
  const r = await runShoal(args, opts);
  if (r.code !== 0) throw new Error(`shoal ${args.join(" ")} failed (exit ${r.code}):\n${r.stderr.trim()}`);
  return r.stdout.toString();
}

/** When a started daemon counts as ready. */
export type Readiness =
  /** Its unix socket accepts connections (the agent's `ROOT/agent.sock`). */
  | { socket: string }
  /** An HTTP GET of this URL answers 200 (a supernode's `/v1/health`). */
  | { url: string }
  /** A TCP connection to this address succeeds (a daemon inside a network namespace). */
  | { tcp: { host: string; port: number } };

/** A shoal daemon started by `startShoal`. */
export interface ShoalDaemon {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Everything it printed so far. */
  logs(): string;
  /** SIGTERM (graceful: a daemon unmounts and closes) and wait for it to exit; SIGKILL after 20 s. */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for it to exit (mounts go stale). */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;
/** Kill `child` (by PID) if it still runs when this process exits. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of live) if (c.exitCode === null && c.signalCode === null && c.pid) try { process.kill(c.pid, "SIGKILL"); } catch { /* gone */ }
  });
}

function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

async function answers(r: Readiness): Promise<boolean> {
  if ("socket" in r) return socketAccepts(r.socket);
  if ("tcp" in r) return tcpAccepts(r.tcp.host, r.tcp.port);
  try {
    const res = await fetch(r.url, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * Start `shoal ...args` as a daemon, its output appended to `logFile`, and
 * wait until `ready` answers (rejecting, with its log, if it exits first or
 * does not answer in `timeoutMs`). `spawn` runs it elsewhere, e.g. inside a
 * network namespace.
 */
export async function startShoal(args: readonly string[], opts: {
  logFile: string;
  ready: Readiness;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  main?: string;
  /** Node flags before the entry point (e.g. `--import HOOK`). */
  nodeArgs?: readonly string[];
  spawn?: (cmd: string, args: readonly string[], opts: SpawnOptions) => ChildProcess;
}): Promise<ShoalDaemon> {
  mkdirSync(dirname(opts.logFile), { recursive: true });
  const fd = openSync(opts.logFile, "a");
  const run = opts.spawn ?? spawn;
  const child = run(process.execPath, [...NODE_ARGS, ...(opts.nodeArgs ?? []), opts.main ?? SHOAL_MAIN, ...args], { stdio: ["ignore", fd, fd], env: { ...process.env, ...opts.env } });
  closeSync(fd);
  killOnExit(child);
  const logs = () => {
    try {
      return readFileSync(opts.logFile, "utf8");
    } catch {
      return "";
    }
  };
  const exited = new Promise<number | null>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once("exit", (code) => resolve(code));
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (gone()) throw new Error(`shoal ${args[0]} exited (${child.exitCode ?? child.signalCode}):\n${logs().slice(-8000)}`);
    if (await answers(opts.ready)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`shoal ${args[0]} not ready after ${opts.timeoutMs ?? 60_000} ms:\n${logs().slice(-8000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    pid: child.pid!,
    logFile: opts.logFile,
    logs,
    async stop() {
      if (gone()) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (gone()) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}

/** A `shoal agent` started by `startAgent`. */
export interface RunningAgent extends ShoalDaemon {
  /** Its state directory (`--root`). */
  readonly root: string;
}

/** Start `shoal agent --root ROOT ...args` (log in ROOT) and wait for its socket. */
export async function startAgent(root: string, args: readonly string[] = [], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {}): Promise<RunningAgent> {
  const daemon = await startShoal(["agent", "--root", root, ...args], {
    logFile: join(root, `agent-${Date.now()}.log`),
    ready: { socket: join(root, "agent.sock") },
    env: { SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? "info", ...opts.env },
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.nodeArgs ? { nodeArgs: opts.nodeArgs } : {}),
  });
  return Object.assign(daemon, { root });
}

/** Start `shoal supernode --root ROOT --listen 127.0.0.1:PORT --plain-http ...args` (log in ROOT) and wait for its health route. */
export function startSupernode(root: string, port: number, args: readonly string[] = []): Promise<ShoalDaemon> {
  return startShoal(["supernode", "--root", root, "--listen", `127.0.0.1:${port}`, "--plain-http", ...args], {
    logFile: join(root, `supernode-${Date.now()}.log`),
    ready: { url: `http://127.0.0.1:${port}/v1/health` },
  });
}
