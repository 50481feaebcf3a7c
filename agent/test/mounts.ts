import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Mountpoints at or below `dir`, deepest first (octal escapes of /proc/self/mounts decoded). */
export function mountsUnder(dir: string): string[] {
  const text = readFileSync("/proc/self/mounts", "utf8");
  const points = text.split("\n").map((l) => l.split(" ")[1]).filter((p): p is string => !!p)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Unmount (lazily) everything at or below `dir`; used by test cleanup so no mount outlives a test. */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (let round = 0; round < 3; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const p of points) {
      try {
        execFileSync("umount", ["-l", p], { stdio: "ignore" });
      } catch {
        try {
          execFileSync("fusermount", ["-uz", p], { stdio: "ignore" });
        } catch {
          // already gone
        }
      }
    }
  }
}
