import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { devNumbers, edgeCaseImage, readXattrs, run, writeTar, type TarSpec as FixtureEntry } from "@shoal/testkit";
import { LayerFilesystem, type LayerSnapshot } from "../../src/fs/index.ts";
import { Cleanup, memoryLayer, stack, tempDir, type MemoryLayer } from "./helpers.ts";

const t = (s: string) => new TextEncoder().encode(s);
const stat = (p: string) => lstat(p, { bigint: true });
const hex = (s: string) => Buffer.from(s).toString("hex");

async function xattr(path: string, name: string): Promise<string> {
  const { stdout } = await run("getfattr", ["-h", "--only-values", "-n", name, path]);
  return stdout;
}

async function walk(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(join(dir, rel), { withFileTypes: true })) {
    const p = rel ? `${rel}/${d.name}` : d.name;
    out.push(p);
    if (d.isDirectory()) out.push(...(await walk(dir, p)));
  }
  return out;
}

describe("per-layer views (overlayfs lower-directory format)", () => {
  const cleanup = new Cleanup();
  let fs: LayerFilesystem;
  let base: string;
  let changes: string;
  let custom: string;
  let lowerCopy: string;
  let edge: MemoryLayer[];

  beforeAll(async () => {
    const work = cleanup.dir(await tempDir("view"));
    const fixture = edgeCaseImage({ chunkSize: 65536, crossLayerHardlink: true, smallFileCount: 10 });
    edge = await Promise.all(fixture.layers.slice(0, 3).map((l, i) => memoryLayer(`e${i}`, l.tar, 65536)));
    const custom0: FixtureEntry[] = [
      { path: "keep", type: "dir", mode: 0o750, uid: 5, gid: 6, mtime: 1_500_000_000, mtimeNsec: 42, xattrs: { "user.keep": "lower dir" } },
      { path: "keep/lower.txt", type: "file", data: t("lower file\n"), mode: 0o640, uid: 11, gid: 12, mtime: 1_400_000_000 },
      { path: "x", type: "dir" },
      { path: "x/old", type: "file", data: t("old\n") },
    ];
    const custom1: FixtureEntry[] = [
      // No entries for "keep" (inherits the lower dir's metadata) nor "a", "a/b" (new: 0755 root).
      { path: "keep/new.txt", type: "file", data: t("new\n") },
      { path: "a/b/c.txt", type: "file", data: t("deep\n") },
      { path: "dup", type: "file", data: t("one\n") },
      { path: "d", type: "dir", mode: 0o700 },
      { path: "d/child", type: "file", data: t("child\n") },
      { path: "dup", type: "file", data: t("two!\n"), mode: 0o600 },
      { path: "d", type: "dir", mode: 0o751 },
      { path: ".wh.x", type: "file" },
      { path: "x", type: "dir", mode: 0o711 },
      { path: "x/fresh", type: "file", data: t("fresh\n") },
      { path: "hl-lower", type: "hardlink", linkname: "keep/lower.txt" },
      { path: "trusted-overlay", type: "file", data: t("x\n"), xattrs: { "trusted.overlay.redirect": "/etc", "user.ok": "1" } },
    ];
    const c0 = await memoryLayer("c0", writeTar(custom0).tar);
    const c1 = await memoryLayer("c1", writeTar(custom1).tar);
    fs = cleanup.fs(new LayerFilesystem({}, { mountpoint: join(work, "layers") }));
    for (const s of stack(edge)) fs.addLayer(s);
    const [s0, s1] = stack([c0, c1]) as [LayerSnapshot, LayerSnapshot];
    fs.addLayer(s0);
    fs.addLayer(s1);
    // The same upper layer again, its lower files resolved without a layer id: copies, not shared inodes.
    fs.addLayer({ ...s1, id: "c1-copy", resolveLower: (p) => {
      const r = s1.resolveLower!(p);
      return r && { entry: r.entry, data: r.data };
    } });
    await fs.mount();
    base = fs.layerPath("e0");
    changes = fs.layerPath("e2");
    custom = fs.layerPath("c1");
    lowerCopy = fs.layerPath("c1-copy");
  }, 120_000);

  afterAll(async () => {
    await cleanup.run();
  });

  it("lists one directory per layer at the mount root", async () => {
    expect((await readdir(fs.mountpoint)).sort()).toEqual(["c0", "c1", "c1-copy", "e0", "e1", "e2"]);
    expect(fs.has("e1")).toBe(true);
  });

  it("shows whiteouts as 0/0 character devices owned by root and hides .wh. names", async () => {
    for (const p of ["rootfile", "wh/gone-file.txt", "wh/gone-dir", "wh/never-existed"]) {
      const st = await stat(join(changes, p));
      expect(st.isCharacterDevice(), p).toBe(true);
      expect(devNumbers(st.rdev), p).toEqual({ major: 0, minor: 0 });
      expect(Number(st.mode) & 0o7777, p).toBe(0);
      expect([st.uid, st.gid], p).toEqual([0n, 0n]);
    }
    expect((await stat(join(changes, "wh/recreated"))).isFile()).toBe(true);
    expect(await readFile(join(changes, "wh/recreated"), "utf8")).toBe("new content after whiteout\n");
    const names = await walk(changes);
    expect(names.filter((n) => n.split("/").some((c) => c.startsWith(".wh.")))).toEqual([]);
    expect(names).toContain("opaque/new1");
  });

  it("marks opaque directories with trusted.overlay.opaque=y and nothing else", async () => {
    expect(await xattr(join(changes, "opaque"), "trusted.overlay.opaque")).toBe("y");
    const all = await readXattrs([join(changes, "opaque"), join(changes, "wh"), join(base, "opaque")]);
    expect(all.get(join(changes, "opaque"))).toEqual({ "trusted.overlay.opaque": hex("y") });
    expect(all.get(join(changes, "wh"))).toBeUndefined();
    await expect(xattr(join(changes, "wh"), "trusted.overlay.opaque")).rejects.toThrow(/No such attribute/);
    await expect(xattr(join(base, "opaque"), "trusted.overlay.opaque")).rejects.toThrow(/No such attribute/);
  });

  it("gives exact stat: type bits, special bits, owners, sizes, ns mtimes, devices, FIFOs", async () => {
    const setuid = await stat(join(base, "usr/bin/setuid"));
    expect(Number(setuid.mode).toString(8)).toBe("104755");
    expect(setuid.size).toBe(8192n);
    expect(Number((await stat(join(base, "usr/bin/all-special"))).mode).toString(8)).toBe("107755");
    expect(Number((await stat(join(base, "tmp"))).mode).toString(8)).toBe("41777");
    const ids = await stat(join(base, "meta/pax-big-ids"));
    expect([ids.uid, ids.gid]).toEqual([3_000_000_000n, 3_000_000_001n]);
    expect((await stat(join(base, "meta/mtime-frac"))).mtimeNs).toBe(1_234_567_890_123_456_789n);
    expect((await stat(join(base, "meta/mtime-future"))).mtimeNs).toBe(4_102_444_800_000_000_000n);
    expect((await stat(join(base, "meta/mtime-epoch"))).mtimeNs).toBe(0n);
    const dev = await stat(join(base, "dev/null"));
    expect(dev.isCharacterDevice() && devNumbers(dev.rdev)).toEqual({ major: 1, minor: 3 });
    expect(devNumbers((await stat(join(base, "dev/big-minor"))).rdev)).toEqual({ major: 200, minor: 70000 });
    const loop = await stat(join(base, "dev/loop0"));
    expect(loop.isBlockDevice() && devNumbers(loop.rdev)).toEqual({ major: 7, minor: 0 });
    expect((await stat(join(base, "dev/fifo"))).isFIFO()).toBe(true);
    expect(await readlink(join(base, "links/rel"))).toBe("target.txt");
    expect(await readlink(join(base, "links/dangling"))).toBe("../nowhere/missing");
    const sl = await stat(join(base, "links/abs"));
    expect(sl.isSymbolicLink() && sl.size).toBe(BigInt("/etc/hostname".length));
    expect(await readFile(join(base, "etc/passwd"), "utf8")).toContain("root:x:0:0");
  });

  it("shares one stable inode among hardlinks, with nlink = names; dirs have 2 + subdirs", async () => {
    const [a, b, c] = await Promise.all(["links/target.txt", "links/hard1", "links/hard2"].map((p) => stat(join(base, p))));
    expect(b!.ino).toBe(a!.ino);
    expect(c!.ino).toBe(a!.ino);
    expect(a!.nlink).toBe(3n);
    expect((await stat(join(base, "links/target.txt"))).ino).toBe(a!.ino);
    const [s1, s2] = await Promise.all(["links/rel", "links/hard-to-symlink"].map((p) => stat(join(base, p))));
    expect(s2!.ino).toBe(s1!.ino);
    expect(s2!.isSymbolicLink()).toBe(true);
    expect((await stat(join(base, "etc/hostname"))).nlink).toBe(1n);
    expect((await stat(join(base, "usr"))).nlink).toBe(3n);
    expect((await stat(join(base, "usr/bin"))).nlink).toBe(2n);
    expect((await stat(join(base, "etc/hostname"))).ino).not.toBe((await stat(join(base, "etc/passwd"))).ino);
  });

  it("passes xattrs from PAX records; absent names give ENODATA", async () => {
    const x = (await readXattrs([join(base, "xattr/user")])).get(join(base, "xattr/user"));
    expect(x).toEqual({ "trusted.shoal": hex("1"), "user.binary": "000102feff", "user.comment": hex("hello") });
    await expect(xattr(join(base, "xattr/user"), "user.nope")).rejects.toThrow(/No such attribute/);
    expect(await xattr(join(base, "xattr/symlink"), "trusted.link")).toBe("on a symlink");
  });

  it("creates implicit parents as 0755 root dirs, and takes a directory's metadata from below when the layer has no entry", async () => {
    for (const p of ["a", "a/b"]) {
      const st = await stat(join(custom, p));
      expect(st.isDirectory() && Number(st.mode) & 0o7777, p).toBe(0o755);
      expect([st.uid, st.gid, st.mtimeNs], p).toEqual([0n, 0n, 0n]);
    }
    expect(await readFile(join(custom, "a/b/c.txt"), "utf8")).toBe("deep\n");
    const keep = await stat(join(custom, "keep"));
    expect([Number(keep.mode) & 0o7777, keep.uid, keep.gid, keep.mtimeNs]).toEqual([0o750, 5n, 6n, 1_500_000_000_000_000_042n]);
    expect(await xattr(join(custom, "keep"), "user.keep")).toBe("lower dir");
  });

  it("lets the last entry of a path win; a directory re-created after its whiteout is opaque", async () => {
    expect(await readFile(join(custom, "dup"), "utf8")).toBe("two!\n");
    expect(Number((await stat(join(custom, "dup"))).mode) & 0o7777).toBe(0o600);
    expect(Number((await stat(join(custom, "d"))).mode) & 0o7777).toBe(0o751);
    expect(await readdir(join(custom, "d"))).toEqual(["child"]);
    expect(Number((await stat(join(custom, "x"))).mode) & 0o7777).toBe(0o711);
    expect(await xattr(join(custom, "x"), "trusted.overlay.opaque")).toBe("y");
    expect(await readdir(join(custom, "x"))).toEqual(["fresh"]);
  });

  it("drops trusted.overlay.* xattrs a layer carries (overlayfs would trust them)", async () => {
    const x = (await readXattrs([join(custom, "trusted-overlay")])).get(join(custom, "trusted-overlay"));
    expect(x).toEqual({ "user.ok": hex("1") });
  });

  it("presents a hardlink into a lower layer as that file: shared inode with a layer id, a copy without", async () => {
    const lower = await stat(join(fs.layerPath("c0"), "keep/lower.txt"));
    const shared = await stat(join(custom, "hl-lower"));
    const copy = await stat(join(lowerCopy, "hl-lower"));
    for (const st of [shared, copy]) {
      expect(st.isFile()).toBe(true);
      expect([Number(st.mode) & 0o7777, st.uid, st.gid, st.size, st.mtimeNs]).toEqual([0o640, 11n, 12n, 11n, 1_400_000_000_000_000_000n]);
    }
    expect(shared.ino).toBe(lower.ino);
    expect(copy.ino).not.toBe(lower.ino);
    expect(await readFile(join(custom, "hl-lower"), "utf8")).toBe("lower file\n");
    expect(await readFile(join(lowerCopy, "hl-lower"), "utf8")).toBe("lower file\n");
    // The fixture's links/cross (layer 2) names layer 0's links/target.txt.
    expect((await stat(join(changes, "links/cross"))).ino).toBe((await stat(join(base, "links/target.txt"))).ino);
  });

  it("adds and removes layers while mounted", async () => {
    const extra = await memoryLayer("extra", writeTar([{ path: "hello", type: "file", data: t("hi\n") }]).tar);
    fs.addLayer({ id: extra.id, index: extra.index, data: extra.data });
    expect(await readFile(join(fs.layerPath("extra"), "hello"), "utf8")).toBe("hi\n");
    expect(await readdir(fs.mountpoint)).toContain("extra");
    expect(() => fs.addLayer({ id: "extra", index: extra.index, data: extra.data })).toThrow(/already/);
    expect(() => fs.addLayer({ id: "a/b", index: extra.index, data: extra.data })).toThrow(/bad layer id/);
    expect(fs.removeLayer("extra")).toBe(true);
    expect(fs.removeLayer("extra")).toBe(false);
    expect(fs.has("extra")).toBe(false);
    await expect(stat(join(fs.layerPath("extra"), "hello"))).rejects.toMatchObject({ code: "ENOENT" });
    expect(await readdir(fs.mountpoint)).not.toContain("extra");
  });
});
