import { lstat, mkdir, mkdtemp, open, readdir, readFile, readlink, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeErofsImage, type ErofsNode } from "@shoal/erofs";
import { KernelMounter } from "../../src/block/kernel-mount.ts";
import { findMount } from "../../src/fs/index.ts";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const GiB = 1024 ** 3;

const node = (mode: number, extra: Partial<ErofsNode> = {}): ErofsNode => ({ mode, uid: 0, gid: 0, mtimeSec: 1_700_000_000, mtimeNsec: 5, size: 0, rdev: 0, dataOffset: 0, ...extra });

/**
 * Trees the edge-case image cannot carry, mounted by the kernel from an
 * image this package wrote, over a sparse local stream: a directory of
 * 100,000 entries, a file past 4 GiB, symlinks inline and in blocks.
 */
describe("the kernel mounts what writeErofsImage writes", () => {
  const mounter = new KernelMounter();
  let work: string;
  let target: string;
  const big = { offset: 4 * GiB + 512 * 7, size: 5 * GiB + 123 };
  const longTarget = `/${"t".repeat(3999)}`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "shoal-erofs-"));
    target = join(work, "mnt");
    await mkdir(target);
    const many = new Map<string, ErofsNode>();
    for (let i = 0; i < 100_000; i++) many.set(`entry-${i.toString().padStart(6, "0")}`, node(S_IFREG | 0o644));
    const shared = node(S_IFREG | 0o600, { size: 10, dataOffset: 512 });
    const root = node(S_IFDIR | 0o755, {
      children: new Map<string, ErofsNode>([
        ["many", node(S_IFDIR | 0o755, { children: many })],
        ["big", node(S_IFREG | 0o644, { size: big.size, dataOffset: big.offset })],
        ["short-link", node(S_IFLNK | 0o777, { linkname: "big" })],
        ["long-link", node(S_IFLNK | 0o777, { linkname: longTarget })],
        ["a", shared],
        ["b", node(S_IFDIR | 0o700, { children: new Map([["also-a", shared]]) })],
      ]),
    });
    const streamSize = big.offset + big.size + 1024;
    const stream = join(work, "stream");
    const fh = await open(stream, "w");
    await fh.truncate(streamSize);
    await fh.write(Buffer.from("0123456789"), 0, 10, 512);
    await fh.write(Buffer.from("head"), 0, 4, big.offset);
    await fh.write(Buffer.from("tail!"), 0, 5, big.offset + big.size - 5);
    await fh.close();
    await writeFile(join(work, "image"), writeErofsImage({ root, devices: [{ size: streamSize }] }).bytes);
    await mounter.mount(join(work, "image"), target, "erofs", 1, `device=${stream}`);
  }, 120_000);

  afterAll(async () => {
    if (await findMount(target)) await mounter.unmount(target);
    await mounter.close();
    await rmdir(target).catch(() => undefined);
    if (!(await findMount(target))) await rm(work, { recursive: true, force: true });
  });

  it("a directory of 100,000 entries lists them all and finds each by name", async () => {
    const names = await readdir(join(target, "many"));
    expect(names.length).toBe(100_000);
    expect(names.slice(0, 2)).toEqual(["entry-000000", "entry-000001"]);
    expect((await lstat(join(target, "many", "entry-099999"))).size).toBe(0);
    expect((await lstat(join(target, "many", "entry-054321"))).mode).toBe(S_IFREG | 0o644);
  });

  it("a file over 4 GiB has its size and reads its last bytes from the device", async () => {
    const st = await lstat(join(target, "big"));
    expect(st.size).toBe(big.size);
    const fh = await open(join(target, "big"));
    try {
      const head = Buffer.alloc(4);
      await fh.read(head, 0, 4, 0);
      const tail = Buffer.alloc(5);
      await fh.read(tail, 0, 5, big.size - 5);
      expect([head.toString(), tail.toString()]).toEqual(["head", "tail!"]);
    } finally {
      await fh.close();
    }
  });

  it("symlinks read back, short (inline) and long (in blocks)", async () => {
    expect(await readlink(join(target, "short-link"))).toBe("big");
    expect(await readlink(join(target, "long-link"))).toBe(longTarget);
  });

  it("two names of one node are one inode with two links", async () => {
    const [a, b] = await Promise.all([lstat(join(target, "a")), lstat(join(target, "b", "also-a"))]);
    expect(a.ino).toBe(b.ino);
    expect(a.nlink).toBe(2);
    expect((await readFile(join(target, "b", "also-a"))).toString()).toBe("0123456789");
    expect(a.mtimeMs).toBe(1_700_000_000_000);
  });
});
