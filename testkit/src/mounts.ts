import { readFile } from "node:fs/promises";
import { run } from "./exec.ts";

/** Mount points at or below `dir` (deepest first), from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split("\n").map((l) => unescape(l.split(" ")[4] ?? "")).filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/**
 * Unmount (lazily) everything at or below `dir`, deepest first, falling back
 * to `fusermount -uz`, for up to three rounds (a stack of overlay on FUSE can
 * need more than one); true when nothing is mounted there any more. Used by
 * test and bench cleanup so no mount outlives its run.
 */
export async function unmountAllUnder(dir: string): Promise<boolean> {
  for (let round = 0; round < 3; round++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return true;
    for (const p of points) {
      await run("umount", ["-l", p]).catch(() => run("fusermount", ["-uz", p])).catch(() => {
        // already gone
      });
    }
  }
  return (await mountsUnder(dir)).length === 0;
}
