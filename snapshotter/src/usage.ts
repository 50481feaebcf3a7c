/** Disk usage of a directory tree, as containerd's `fs.DiskUsage` counts it. */
import { lstat, readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * Bytes (allocated blocks × 512) and inodes under `dir`, the directory
 * itself included, each hardlinked inode counted once. A missing `dir`
 * uses nothing.
 */
export async function diskUsage(dir: string): Promise<{ size: number; inodes: number }> {
  const seen = new Set<string>();
  let size = 0;
  const walk = async (p: string): Promise<void> => {
    let st;
    try {
      st = await lstat(p, { bigint: true });
    } catch {
      return;
    }
    const id = `${st.dev}:${st.ino}`;
    if (seen.has(id)) return;
    seen.add(id);
    size += Number(st.blocks) * 512;
    if (!st.isDirectory()) return;
    for (const name of await readdir(p).catch(() => [] as string[])) await walk(join(p, name));
  };
  await walk(dir);
  return { size, inodes: seen.size };
}
