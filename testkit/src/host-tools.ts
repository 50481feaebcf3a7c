// Small host helpers shared by the network-namespace and image-building
// fixtures (only `pidAlive` is exported from testkit's index).
import { execFileSync, spawn as spawnChild, type ChildProcess, type SpawnOptions } from "node:child_process";
import { run, type RunResult } from "./exec.ts";

/** True when process `pid` exists (EPERM counts: it exists, it is not ours). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Stdout of `cmd args`, or undefined when it fails (for teardown, where failures are expected). */
export function trySync(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return undefined;
  }
}

/** `tc` arguments that cap `dev`'s egress at `rateMbit` with a token bucket. */
export function tbfArgs(dev: string, rateMbit: number): string[] {
  const bytesPerSec = (rateMbit * 1e6) / 8;
  // 10 ms worth of tokens, at least a few full-size frames.
  const burst = Math.max(32 * 1024, Math.round(bytesPerSec / 100));
  return ["qdisc", "replace", "dev", dev, "root", "tbf", "rate", `${rateMbit}mbit`, "burst", String(burst), "latency", "50ms"];
}

/** Ways to run commands inside network namespace `name`. */
export interface NamespaceRunners {
  exec(cmd: string, args: readonly string[], opts?: { signal?: AbortSignal; env?: Record<string, string> }): Promise<RunResult>;
  spawn(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  spawnNetOnly(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
}

/**
 * `exec`/`spawn` (`ip netns exec`) and `spawnNetOnly` (`nsenter --net`, mounts
 * and /etc of the host) inside namespace `name`; refused once `destroyed()`.
 * Spawned children are handed to `track` (so teardown can kill them).
 */
export function namespaceRunners(name: string, destroyed: () => boolean, track: (child: ChildProcess) => void): NamespaceRunners {
  const tracked = (child: ChildProcess): ChildProcess => {
    track(child);
    return child;
  };
  return {
    exec(cmd, args, o = {}) {
      if (destroyed()) return Promise.reject(new Error(`netns ${name} is destroyed`));
      return run("ip", ["netns", "exec", name, cmd, ...args], o);
    },
    spawn(cmd, args, o = {}) {
      if (destroyed()) throw new Error(`netns ${name} is destroyed`);
      return tracked(spawnChild("ip", ["netns", "exec", name, cmd, ...args], o));
    },
    spawnNetOnly(cmd, args, o = {}) {
      if (destroyed()) throw new Error(`netns ${name} is destroyed`);
      return tracked(spawnChild("nsenter", [`--net=/run/netns/${name}`, "--", cmd, ...args], o));
    },
  };
}

/** Kill every process inside network namespace `name` (SIGKILL, until none is left or 50 rounds), then delete it. Synchronous: exit hooks use it. */
export function deleteNamespaceSync(name: string): void {
  for (let round = 0; round < 50; round++) {
    const pids = (trySync("ip", ["netns", "pids", name]) ?? "").split(/\s+/).filter(Boolean).map(Number).filter((n) => n > 0);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    execFileSync("sleep", ["0.02"]);
  }
  trySync("ip", ["netns", "del", name]);
}
