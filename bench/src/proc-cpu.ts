// What a bench reads of a process it started, from /proc.
import { readFileSync } from "node:fs";

/** Linux reports process CPU times in USER_HZ ticks, 100 per second on every architecture Node runs on. */
const USER_HZ = 100;

/**
 * CPU seconds process `pid` has used so far in user space and in the
 * kernel (every thread; with `thread`, that thread's alone: its main thread
 * is `thread = pid`); zeros when it is gone.
 */
export function cpuTimesOf(pid: number | undefined, thread?: number): { user: number; system: number } {
  if (pid === undefined) return { user: 0, system: 0 };
  try {
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { user: Number(fields[11]) / USER_HZ, system: Number(fields[12]) / USER_HZ }; // utime, stime (fields 14, 15)
  } catch {
    return { user: 0, system: 0 };
  }
}

/** CPU seconds (user + system, every thread) process `pid` has used so far; 0 when it is gone. */
export function cpuSecondsOf(pid: number | undefined): number {
  const t = cpuTimesOf(pid);
  return t.user + t.system;
}

/** This machine's CPU seconds so far, summed over its cores (/proc/stat): busy (user, nice, system, irq, softirq) and stolen by the hypervisor. */
export interface MachineCpu {
  busy: number;
  steal: number;
}

/** {@link MachineCpu} as /proc/stat's `cpu` line has it now; zeros where /proc is not Linux's. */
export function machineCpuTimes(): MachineCpu {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
    return { busy: (user + nice + system + irq + softirq) / USER_HZ, steal: steal / USER_HZ };
  } catch {
    return { busy: 0, steal: 0 };
  }
}
