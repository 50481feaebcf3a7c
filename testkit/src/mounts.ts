import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./exec.ts";

/** Mount points at or below `dir` (deepest first), from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text.split("\n").map((l) => unescape(l.split(" ")[4] ?? "")).filter((p) => p === dir || p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** The pid files of FUSE keepers at most `depth` directories below `dir`, not looking into mounts (a held FUSE mount would not answer). */
async function keeperPidFiles(dir: string, depth = 4, skip?: Set<string>): Promise<string[]> {
  skip ??= new Set(await mountsUnder(dir));
  if (skip.has(dir)) return [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.isFile() && e.name === "fuse-keeper.pid") out.push(join(dir, e.name));
    else if (e.isDirectory() && depth > 0) out.push(...(await keeperPidFiles(join(dir, e.name), depth - 1, skip)));
  }
  return out;
}

/**
 * Stop the FUSE keepers that agents rooted below `dir` started (found by
 * their pid files, and only if that pid still runs a keeper of a socket
 * below `dir`): SIGTERM, which unmounts what they hold, then SIGKILL after 20 s.
 */
export async function stopKeepersUnder(dir: string): Promise<void> {
  for (const file of await keeperPidFiles(dir)) {
    const pid = Number((await readFile(file, "utf8").catch(() => "")).trim());
    const cmdline = async () => (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0");
    const args = await cmdline();
    if (!pid || !args.includes("fuse-keeper") || !args.some((a) => a.startsWith(`${dir}/`))) continue;
    process.kill(pid, "SIGTERM");
    const deadline = Date.now() + 20_000;
    while ((await cmdline()).includes("fuse-keeper")) {
      if (Date.now() > deadline) {
        process.kill(pid, "SIGKILL");
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Stop the FUSE keepers of agents below `dir` (`stopKeepersUnder`), then
 * unmount (lazily) everything at or below `dir`, deepest first, falling back
 * to `fusermount -uz`, for up to three rounds (a stack of overlay on FUSE can
 * need more than one); true when nothing is mounted there any more. Used by
 * test and bench cleanup so no mount outlives its run.
 */
export async function unmountAllUnder(dir: string): Promise<boolean> {
  await stopKeepersUnder(dir);
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
