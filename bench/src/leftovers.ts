// What the benches leave behind if they die: processes to kill, mounts to
// detach and work dirs to remove, at exit whatever happens; and the leftovers
// of earlier runs that were killed outright.
import { execFileSync, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountsUnder, pidAlive } from "@shoal/testkit";

/** Processes to kill at exit (still running ones only). */
export const liveProcs = new Set<ChildProcess>();
/** Dirs to unmount everything under at exit. */
export const liveMountRoots = new Set<string>();
/** Dirs to unmount under and then remove at exit. */
export const liveWorkDirs = new Set<string>();

let exitHook = false;

/** Kill, unmount and remove what the sets above hold when this process exits (once; idempotent). */
export function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const a of liveProcs) {
      if (a.pid !== undefined && a.exitCode === null && a.signalCode === null) {
        try {
          process.kill(a.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    const mounted = () => execFileSync("findmnt", ["-rn", "-o", "TARGET"], { encoding: "utf8" }).split("\n");
    for (const dir of [...liveMountRoots, ...liveWorkDirs]) {
      try {
        const mounts = mounted().filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
        for (const m of mounts) execFileSync("umount", ["-l", m], { stdio: "ignore" });
      } catch {
        // best effort
      }
    }
    for (const dir of liveWorkDirs) {
      try {
        if (!mounted().some((p) => p.startsWith(`${dir}/`))) rmSync(dir, { recursive: true, force: true });
      } catch {
        // best effort
      }
    }
  });
}

/** Remove work dirs `<tmpdir>/<prefix><pid>-*` of earlier runs whose process is gone and under which nothing is mounted. */
export async function sweepStaleWorkDirs(prefix: string): Promise<void> {
  for (const f of await readdir(tmpdir())) {
    const m = new RegExp(`^${prefix}(\\d+)-`).exec(f);
    if (!m) continue;
    if (pidAlive(Number(m[1]))) continue; // still running
    const dir = join(tmpdir(), f);
    if ((await mountsUnder(dir)).length === 0) await rm(dir, { recursive: true, force: true });
  }
}

/** SIGTERM `child`, SIGKILL it after `graceMs`, and wait for it to exit; then forget it in `liveProcs`. */
export async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
    liveProcs.delete(child);
    return;
  }
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = (signal: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
    } catch {
      // gone
    }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), graceMs);
  await gone;
  clearTimeout(timer);
  liveProcs.delete(child);
}

/** Remove the work dir `work` (and forget it) once nothing is mounted under it; otherwise leave it and say so. True when removed. */
export async function removeWorkDir(work: string, log: (line: string) => void): Promise<boolean> {
  if ((await mountsUnder(work)).length > 0) {
    log(`left ${work} in place: something is still mounted under it`);
    return false;
  }
  await rm(work, { recursive: true, force: true });
  liveWorkDirs.delete(work);
  return true;
}
