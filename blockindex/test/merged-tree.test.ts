import { describe, expect, it } from "vitest";
import { LayerIndex, MergedTree, NotFoundError, normalizeUserPath, type EntryType, type TarEntry } from "@shoal/blockindex";

function entry(path: string, type: EntryType = "file", extra: Partial<TarEntry> = {}): TarEntry {
  return { path, type, mode: 0o644, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, size: 0, dataOffset: 0, ...extra };
}
function layer(...entries: TarEntry[]): LayerIndex {
  return new LayerIndex({ chunkSize: 4096, uncompressedSize: 0, chunkLengths: [], chunkDigests: [], entries });
}
const names = (t: MergedTree) => [...t.walk()].map((n) => n.path).filter(Boolean);

describe("MergedTree", () => {
  it("applies whiteouts of files and directories from lower layers", () => {
    const t = MergedTree.build([
      layer(entry("etc", "dir"), entry("etc/a"), entry("etc/b"), entry("var", "dir"), entry("var/x")),
      layer(entry("etc/.wh.a"), entry(".wh.var")),
    ]);
    expect(names(t)).toEqual(["etc", "etc/b"]);
    expect(() => t.resolve("/var/x")).toThrow(NotFoundError);
  });

  it("whiteouts apply to lower layers only, not to the same layer", () => {
    const t = MergedTree.build([layer(entry("a")), layer(entry("a", "file", { size: 5 }), entry(".wh.a"))]);
    expect(t.resolve("a").inode.layer).toBe(1);
  });

  it("an opaque directory hides everything below it", () => {
    const t = MergedTree.build([
      layer(entry("d", "dir"), entry("d/old"), entry("d/sub", "dir"), entry("d/sub/deep")),
      layer(entry("d", "dir", { mode: 0o700 }), entry("d/.wh..wh..opq"), entry("d/new")),
    ]);
    expect(names(t)).toEqual(["d", "d/new"]);
    expect(t.resolve("d").inode.entry.mode).toBe(0o700);
  });

  it("a file replacing a directory drops the subtree, and the reverse", () => {
    const t = MergedTree.build([
      layer(entry("x", "dir"), entry("x/child"), entry("y")),
      layer(entry("x"), entry("y", "dir"), entry("y/inner")),
    ]);
    expect(names(t)).toEqual(["x", "y", "y/inner"]);
    expect(t.resolve("x").inode.entry.type).toBe("file");
  });

  it("a directory over a directory merges children and takes the upper metadata", () => {
    const t = MergedTree.build([layer(entry("d", "dir", { uid: 1 }), entry("d/a")), layer(entry("d", "dir", { uid: 2 }), entry("d/b"))]);
    expect(names(t)).toEqual(["d", "d/a", "d/b"]);
    expect(t.resolve("d").inode.entry.uid).toBe(2);
  });

  it("hardlinks share the inode of their target, even across layers", () => {
    const t = MergedTree.build([layer(entry("bin", "dir"), entry("bin/busybox", "file", { size: 10 })), layer(entry("bin/sh", "hardlink", { linkname: "bin/busybox" }))]);
    expect(t.resolve("bin/sh").inode).toBe(t.resolve("bin/busybox").inode);
  });

  it("creates missing parent directories and follows symlinks", () => {
    const t = MergedTree.build([layer(entry("a/b/c"), entry("l", "symlink", { linkname: "a/b" }), entry("a/abs", "symlink", { linkname: "/a/b/c" }), entry("loop", "symlink", { linkname: "loop" }))]);
    expect(t.resolve("/l/c", {}).path).toBe("a/b/c");
    expect(t.resolve("a/abs", { follow: true }).path).toBe("a/b/c");
    expect(t.resolve("a/abs").inode.entry.type).toBe("symlink");
    expect(t.resolve("a/b/../b/c").path).toBe("a/b/c");
    expect(() => t.resolve("loop", { follow: true })).toThrow(/too many levels/);
    expect(() => t.resolve("a/b/c/d")).toThrow(/not a directory/);
  });

  it("normalises user paths", () => {
    expect(normalizeUserPath("/etc//passwd/")).toBe("etc/passwd");
    expect(normalizeUserPath("/")).toBe("");
  });
});
