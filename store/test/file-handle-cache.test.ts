import { readdir, readlink, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileHandleCache } from "../src/file-handle-cache.ts";
import { removeDir, tempDir } from "./helpers.ts";

let dir: string;
beforeAll(async () => {
  dir = await tempDir("shoal-fdcache-");
});
afterAll(async () => {
  await removeDir(dir);
});

/** This process's open descriptors that point into `dir`. */
async function openInDir(): Promise<number> {
  let n = 0;
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target.startsWith(dir)) n++;
  }
  return n;
}

const read4 = async (cache: FileHandleCache, file: string): Promise<string> =>
  cache.with(file, async (h) => {
    const b = Buffer.alloc(4);
    await h.read(b, 0, 4, 0);
    return b.toString();
  });

describe("FileHandleCache", () => {
  it("reuses handles, stays bounded and closes everything", async () => {
    const files = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const f = path.join(dir, `f${i}`);
        await writeFile(f, `f${i}xx`);
        return f;
      }),
    );
    const cache = new FileHandleCache(3);
    let seen: unknown;
    await cache.with(files[0]!, async (h) => void (seen = h));
    await cache.with(files[0]!, async (h) => expect(h).toBe(seen));
    for (const f of files) expect(await read4(cache, f)).toBe(path.basename(f).padEnd(4, "x"));
    expect(cache.size).toBe(3);
    await new Promise((r) => setTimeout(r, 20));
    expect(await openInDir()).toBe(3);
    await cache.closeAll();
    await new Promise((r) => setTimeout(r, 20));
    expect(await openInDir()).toBe(0);
    // After closeAll, reads still work but nothing stays open.
    expect(await read4(cache, files[1]!)).toBe("f1xx");
    await new Promise((r) => setTimeout(r, 20));
    expect(await openInDir()).toBe(0);
  });

  it("does not close a handle while a read uses it, even when invalidated or pushed out", async () => {
    const f = path.join(dir, "busy");
    await writeFile(f, "busy-bytes");
    const other = path.join(dir, "other");
    await writeFile(other, "othr");
    const cache = new FileHandleCache(1);
    const result = await cache.with(f, async (h) => {
      cache.invalidate(f);
      await rm(f); // unlinked while open: the handle still reads it
      expect(await read4(cache, other)).toBe("othr"); // takes the cache's only slot
      const b = Buffer.alloc(10);
      await h.read(b, 0, 10, 0);
      return b.toString();
    });
    expect(result).toBe("busy-bytes");
    await expect(read4(cache, f)).rejects.toMatchObject({ code: "ENOENT" });
    await cache.closeAll();
  });
});
