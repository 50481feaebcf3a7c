import { describe, expect, it } from "vitest";
import { LayerIndex, type EntryType, type TarEntry } from "@shoal/blockindex";

const entry = (path: string, type: EntryType = "file", linkname?: string): TarEntry => ({
  path, type, mode: type === "dir" ? 0o755 : 0o644, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, size: 0, dataOffset: 0, ...(linkname !== undefined ? { linkname } : {}),
});

/** Encode `entries` as a (consistent, forged) index and decode it again. */
const roundTrip = (...entries: TarEntry[]) =>
  LayerIndex.decode(new LayerIndex({ chunkSize: 4096, uncompressedSize: 0, chunkLengths: [], chunkDigests: [], entries }).encode());

describe("LayerIndex.decode", () => {
  it("takes clean relative paths, and symlinks pointing anywhere", () => {
    const index = roundTrip(entry("", "dir"), entry("etc", "dir"), entry("etc/passwd"), entry("etc/alias", "hardlink", "etc/passwd"), entry("etc/abs", "symlink", "/etc/passwd"), entry("etc/up", "symlink", "../x"));
    expect(index.entries.map((e) => e.path)).toEqual(["", "etc", "etc/passwd", "etc/alias", "etc/abs", "etc/up"]);
  });

  it("refuses an index whose paths are absolute, escape the root or are not clean, as the tar reader does", () => {
    for (const path of ["/etc/passwd", "/../../../etc/passwd", "..", "a/../b", "a/..", "./a", "a//b", "a/", "a/./b", ".", "a\0b"]) {
      expect(() => roundTrip(entry("ok"), entry(path)), path).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_INDEX" }) as Error);
    }
  });

  it("refuses a hardlink whose target is outside the layer", () => {
    for (const target of ["/etc/shadow", "../etc/shadow", "a/../../b"]) {
      expect(() => roundTrip(entry("a"), entry("b", "hardlink", target)), target).toThrow(expect.objectContaining({ code: "SHOAL_ERR_BAD_INDEX" }) as Error);
    }
  });
});
