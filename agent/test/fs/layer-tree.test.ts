import { describe, expect, it } from "vitest";
import { LayerIndex, type TarEntry } from "@shoal/blockindex";
import type { LayerData, LowerFile } from "../../src/fs/index.ts";
import { LayerTree } from "../../src/fs/layer-tree.ts";

const noData: LayerData = { read: () => Promise.reject(new Error("no data")) };

function entry(path: string, type: TarEntry["type"], extra: Partial<TarEntry> = {}): TarEntry {
  return { path, type, mode: type === "dir" ? 0o755 : 0o644, uid: 0, gid: 0, mtimeSec: 1, mtimeNsec: 0, size: 0, dataOffset: 0, ...extra };
}

function build(entries: TarEntry[], resolveLower?: (p: string) => LowerFile | undefined): LayerTree {
  let ino = 2;
  const index = new LayerIndex({ chunkSize: 4096, uncompressedSize: 0, chunkLengths: [], chunkDigests: [], entries });
  return LayerTree.build({ id: "t", index, data: noData, resolveLower }, () => ino++);
}

describe("LayerTree", () => {
  it("builds 100k entries quickly, with unique inode numbers", () => {
    const entries: TarEntry[] = [];
    for (let d = 0; d < 1000; d++) {
      entries.push(entry(`usr/share/d${d}`, "dir"));
      for (let f = 0; f < 100; f++) entries.push(entry(`usr/share/d${d}/f${f}`, "file", { size: 10, dataOffset: 512 }));
    }
    const start = performance.now();
    const tree = build(entries);
    const ms = performance.now() - start;
    console.log(`LayerTree.build: ${entries.length} entries in ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(5000);
    expect(tree.nodes.length).toBe(entries.length + 4); // + root, usr, usr/share (implicit), and the stream
    expect(tree.nodes.at(-1)).toBe(tree.stream);
    expect(tree.filesIn(0, 512)).toEqual([]);
    expect(tree.filesIn(0, 1024, 3).map((f) => f.size)).toEqual([10, 10, 10]); // (every file here has the same bytes)
    expect(new Set(tree.nodes.map((n) => n.ino)).size).toBe(tree.nodes.length);
    expect(tree.lookup("usr/share")!.nlink).toBe(1002);
    expect(tree.lookup("usr/share/d999/f99")!.size).toBe(10);
  });

  it("keeps a name the layer has over its own whiteout, and ignores AUFS metadata names", () => {
    const tree = build([
      entry("a", "file"), entry(".wh.a", "file"), entry(".wh.b", "file"),
      entry(".wh..wh.plnk", "dir"), entry(".wh..wh.aufs", "file"),
    ]);
    expect(tree.lookup("a")!.mode).toBe(0o100644);
    expect(tree.lookup("b")!.mode).toBe(0o020000);
    expect([...tree.root.children!.keys()].sort()).toEqual(["a", "b"]);
  });

  it("resolves hardlinks at their position in the tar: earlier names here, else the lower layers", () => {
    const lowerEntry = entry("later", "file", { size: 3, dataOffset: 1024, uid: 9 });
    const lowerData: LayerData = { read: async () => Buffer.from("low") };
    const seen: string[] = [];
    const tree = build([
      entry("early", "file", { size: 5 }),
      entry("to-early", "hardlink", { linkname: "early" }),
      entry("to-later", "hardlink", { linkname: "later" }),
      entry("later", "file", { size: 7 }),
      entry("to-dir", "hardlink", { linkname: "dir" }),
      entry("dir", "dir"),
      entry("to-nothing", "hardlink", { linkname: "nothing" }),
    ], (p) => {
      seen.push(p);
      return p === "later" ? { entry: lowerEntry, data: lowerData } : undefined;
    });
    expect(tree.lookup("to-early")).toBe(tree.lookup("early"));
    expect(tree.lookup("early")!.nlink).toBe(2);
    const toLater = tree.lookup("to-later")!;
    expect(toLater).not.toBe(tree.lookup("later"));
    expect([toLater.size, toLater.uid, toLater.dataOffset, toLater.data]).toEqual([3, 9, 1024, lowerData]);
    expect(tree.lookup("to-dir")).toBeUndefined();
    expect(tree.lookup("to-nothing")).toBeUndefined();
    expect(seen).toContain("nothing");
    // left out, and said so (the filesystem logs them)
    expect(tree.brokenLinks).toEqual([{ path: "to-dir", target: "dir" }, { path: "to-nothing", target: "nothing" }]);
  });

  it("replaces a file by a directory (and a directory by a file) in tar order", () => {
    const tree = build([
      entry("f", "file"), entry("f/g", "file"),
      entry("d", "dir"), entry("d/x", "file"), entry("d", "file", { size: 1 }),
    ]);
    expect(tree.lookup("f")!.children?.has("g")).toBe(true);
    expect(tree.lookup("d")!.children).toBeUndefined();
    expect(tree.lookup("d/x")).toBeUndefined();
    expect(tree.root.nlink).toBe(3);
  });

  it("marks opaque directories, also implicit ones, and drops empty and trusted.overlay xattrs", () => {
    const tree = build([
      entry("o/.wh..wh..opq", "file"),
      entry("x", "file", { xattrs: new Map([["user.empty", new Uint8Array(0)], ["trusted.overlay.origin", new Uint8Array([1])], ["user.a", new Uint8Array([2])]]) }),
    ]);
    expect([...tree.lookup("o")!.xattrs!.entries()]).toEqual([["trusted.overlay.opaque", Buffer.from("y")]]);
    expect(tree.lookup("o")!.children!.size).toBe(0);
    expect([...tree.lookup("x")!.xattrs!.keys()]).toEqual(["user.a"]);
  });
});
