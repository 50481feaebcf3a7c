import { describe, expect, it } from "vitest";
import { writeErofsImage, type ErofsNode } from "../src/index.ts";

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFCHR = 0o020000;

const node = (mode: number, extra: Partial<ErofsNode> = {}): ErofsNode => ({ mode, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, size: 0, rdev: 0, dataOffset: 0, ...extra });

function tree(): ErofsNode {
  return node(S_IFDIR | 0o755, {
    children: new Map<string, ErofsNode>([
      ["z", node(S_IFREG | 0o644, { size: 1000, dataOffset: 1024, uid: 70_000, mtimeSec: -5, mtimeNsec: 999_999_999 })],
      ["a", node(S_IFREG | 0o644, { size: 1, dataOffset: 512, xattrs: new Map([["user.k", new Uint8Array([1, 2, 3])], ["system.other", new Uint8Array([1])]]) })],
      ["wh", node(S_IFCHR, { rdev: 0 })],
      ["d", node(S_IFDIR | 0o700, { children: new Map() })],
    ]),
  });
}

/** A little reader of what the writer lays out, enough to check it. */
function superblock(img: Buffer) {
  const sb = 1024;
  return { magic: img.readUInt32LE(sb), blkszbits: img.readUInt8(sb + 12), rootNid: img.readUInt16LE(sb + 14), inos: Number(img.readBigUInt64LE(sb + 16)), blocks: img.readUInt32LE(sb + 36), metaBlk: img.readUInt32LE(sb + 40), devices: img.readUInt16LE(sb + 86) };
}

function dirNames(img: Buffer, nid: number): string[] {
  const s = superblock(img);
  const at = s.metaBlk * 512 + nid * 32;
  const size = Number(img.readBigUInt64LE(at + 8));
  const blk = img.readUInt32LE(at + 16);
  const names: string[] = [];
  for (let b = 0; b < size / 512; b++) {
    const base = (blk + b) * 512;
    const n = img.readUInt16LE(base + 8) / 12;
    for (let k = 0; k < n; k++) {
      const off = img.readUInt16LE(base + k * 12 + 8);
      const end = k + 1 < n ? img.readUInt16LE(base + (k + 1) * 12 + 8) : img.indexOf(0, base + off) - base;
      names.push(img.subarray(base + off, base + Math.min(end, 512)).toString());
    }
  }
  return names;
}

describe("writeErofsImage", () => {
  it("writes the same bytes for the same tree", () => {
    const a = writeErofsImage({ root: tree(), devices: [{ size: 4096 }] });
    const b = writeErofsImage({ root: tree(), devices: [{ size: 4096 }] });
    expect(a.bytes.equals(b.bytes)).toBe(true);
    expect(a.bytes.length % 512).toBe(0);
  });

  it("lays out a superblock of 512-byte blocks with the root first and sorted directory entries", () => {
    const img = writeErofsImage({ root: tree(), devices: [{ size: 4096 }] });
    const s = superblock(img.bytes);
    expect(s).toMatchObject({ magic: 0xe0f5e1e2, blkszbits: 9, rootNid: 0, inos: 5, devices: 1, blocks: img.bytes.length / 512 });
    expect(dirNames(img.bytes, 0)).toEqual([".", "..", "a", "d", "wh", "z"]);
  });

  it("leaves out xattrs erofs cannot name, and says which", () => {
    expect(writeErofsImage({ root: tree(), devices: [{ size: 4096 }] }).skippedXattrs).toEqual(["system.other"]);
  });

  it("refuses file data that is not block-aligned, a device that is not there, and names erofs cannot hold", () => {
    const misaligned = node(S_IFDIR, { children: new Map([["f", node(S_IFREG, { size: 1, dataOffset: 100 })]]) });
    expect(() => writeErofsImage({ root: misaligned, devices: [{ size: 4096 }] })).toThrow(/not block-aligned/);
    expect(() => writeErofsImage({ root: tree(), devices: [{ size: 4096 }], deviceOf: () => 2 })).toThrow(/device 2/);
    const long = node(S_IFDIR, { children: new Map([["n".repeat(256), node(S_IFREG)]]) });
    expect(() => writeErofsImage({ root: long, devices: [{ size: 1 }] })).toThrow(/cannot hold the name/);
  });
});
