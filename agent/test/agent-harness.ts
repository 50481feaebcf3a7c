import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { socketAccepts } from "@shoal/testkit";

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

/** A `shoal agent` process started by a test. */
export interface RunningAgent {
  readonly root: string;
  readonly child: ChildProcess;
  /** Everything the agent logged so far. */
  logs(): string;
  /** SIGTERM and wait for exit (graceful: unmounts). */
  stop(): Promise<number | null>;
  /** SIGKILL and wait for exit (mounts go stale). */
  kill(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) if (c.exitCode === null && c.pid) try { process.kill(c.pid, "SIGKILL"); } catch { /* gone */ }
});

/** Start `shoal agent --root ROOT ...args` and wait until its socket answers. */
export async function startAgent(root: string, args: string[] = [], timeoutMs = 30_000): Promise<RunningAgent> {
  // Logs go to a file, not a pipe: an agent must never stall because the
  // process that started it is busy (a full pipe blocks its log writes).
  mkdirSync(root, { recursive: true });
  const logFile = join(root, `agent-${Date.now()}.log`);
  const fd = openSync(logFile, "a");
  const child = spawn(process.execPath, [MAIN, "agent", "--root", root, ...args], { stdio: ["ignore", fd, fd], env: { ...process.env, SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? "info" } });
  closeSync(fd);
  live.add(child);
  const readLog = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => {
    live.delete(child);
    resolve(code);
  }));
  const sock = join(root, "agent.sock");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`agent exited with ${child.exitCode}: ${readLog()}`);
    if (existsSync(sock) && (await socketAccepts(sock))) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`agent did not start in ${timeoutMs} ms: ${readLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    root,
    child,
    logs: readLog,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (child.exitCode !== null) return;
      child.kill("SIGKILL");
      await exited;
    },
  };
}
