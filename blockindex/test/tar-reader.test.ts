import { execFileSync } from "node:child_process";
import { chmodSync, linkSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LayerFormatError, TarParser, type TarEntry } from "@shoal/blockindex";
import { gnuTar, prng, rawHeader, rawTar, tempDir } from "./helpers.ts";

function parseAll(tar: Buffer, pieceSize = 0): TarEntry[] {
  const out: TarEntry[] = [];
  const p = new TarParser((e) => out.push(e), { layer: "test" });
  if (pieceSize === 0) p.push(tar);
  else for (let i = 0; i < tar.length; i += pieceSize) p.push(tar.subarray(i, i + pieceSize));
  p.end();
  return out;
}

describe("TarParser against GNU tar output", () => {
  const t = tempDir();
  const rnd = prng(7);
  const longDir = "d".repeat(90) + "/" + "e".repeat(90) + "/" + "f".repeat(60);
  beforeAll(() => {
    const r = t.dir + "/root";
    mkdirSync(join(r, longDir), { recursive: true });
    writeFileSync(join(r, longDir, "x".repeat(120)), rnd(3000));
    writeFileSync(join(r, "small"), "hello\n");
    writeFileSync(join(r, "empty"), "");
    writeFileSync(join(r, "big"), rnd(700_000));
    chmodSync(join(r, "big"), 0o4755);
    linkSync(join(r, "small"), join(r, "hard"));
    symlinkSync("small", join(r, "sym"));
    symlinkSync("/" + "t".repeat(150), join(r, "longsym"));
    execFileSync("mkfifo", [join(r, "fifo")]);
    execFileSync("mknod", [join(r, "null"), "c", "1", "3"]);
    execFileSync("mknod", [join(r, "loop"), "b", "7", "0"]);
    mkdirSync(join(r, "sticky"));
    chmodSync(join(r, "sticky"), 0o1777);
  });
  afterAll(() => t.cleanup());

  for (const format of ["pax", "gnu"] as const) {
    it(`reads every entry of a ${format} archive with correct offsets`, () => {
      const r = t.dir + "/root";
      const tar = gnuTar(r, format, ["--numeric-owner"]);
      for (const pieceSize of [0, 1, 511, 513, 4096]) {
        const entries = parseAll(tar, pieceSize);
        const byPath = new Map(entries.map((e) => [e.path, e]));
        expect(byPath.get("")?.type).toBe("dir");
        const long = byPath.get(`${longDir}/${"x".repeat(120)}`)!;
        expect(long.type).toBe("file");
        expect(tar.subarray(long.dataOffset, long.dataOffset + long.size)).toEqual(readFileSync(join(r, longDir, "x".repeat(120))));
        const big = byPath.get("big")!;
        expect(big.size).toBe(700_000);
        expect(big.mode).toBe(0o4755);
        expect(tar.subarray(big.dataOffset, big.dataOffset + big.size)).toEqual(readFileSync(join(r, "big")));
        const pair = [byPath.get("hard")!, byPath.get("small")!];
        expect(pair.find((e) => e.type === "file")?.size).toBe(6);
        expect(byPath.get("empty")).toMatchObject({ type: "file", size: 0 });
        // GNU tar stores the second name of a hardlinked pair as a link entry
        const links = pair.filter((e) => e.type === "hardlink");
        expect(links).toHaveLength(1);
        expect(["hard", "small"]).toContain(links[0]!.linkname);
        expect(byPath.get("sym")).toMatchObject({ type: "symlink", linkname: "small" });
        expect(byPath.get("longsym")).toMatchObject({ type: "symlink", linkname: "/" + "t".repeat(150) });
        expect(byPath.get("fifo")?.type).toBe("fifo");
        expect(byPath.get("null")).toMatchObject({ type: "chardev", devmajor: 1, devminor: 3 });
        expect(byPath.get("loop")).toMatchObject({ type: "blockdev", devmajor: 7, devminor: 0 });
        expect(byPath.get("sticky")).toMatchObject({ type: "dir", mode: 0o1777 });
        expect(byPath.get("small")!.mtimeSec).toBe(Math.floor(lstatSync(join(r, "small")).mtimeMs / 1000));
      }
    });
  }

  it("takes PAX xattrs, uid/gid and fractional mtime overrides", () => {
    const pax = (recs: string[]) => {
      const body = recs.map((r) => {
        let len = r.length + 3;
        while (Buffer.byteLength(`${len} ${r}\n`) !== len) len++;
        return `${len} ${r}\n`;
      }).join("");
      return Buffer.from(body);
    };
    const data = pax(["uid=3000000000", "gid=4000000000", "mtime=1234567890.5", "SCHILY.xattr.user.test=v\u00e9", `path=${"p".repeat(300)}`]);
    const tar = rawTar([rawHeader({ name: "PaxHeaders/x", type: "x", size: data.length }), { data }, rawHeader({ name: "short", size: 3 }), { data: Buffer.from("abc") }]);
    const [e] = parseAll(tar);
    expect(e).toMatchObject({ path: "p".repeat(300), uid: 3000000000, gid: 4000000000, mtimeSec: 1234567890, mtimeNsec: 500000000, size: 3 });
    expect(Buffer.from(e!.xattrs!.get("user.test")!).toString()).toBe("v\u00e9");
  });

  it("normalises ./ prefixes and trailing slashes", () => {
    const tar = rawTar([rawHeader({ name: "./", type: "5" }), rawHeader({ name: "./a/", type: "5" }), rawHeader({ name: "./a//b", size: 0 })]);
    expect(parseAll(tar).map((e) => e.path)).toEqual(["", "a", "a/b"]);
  });
});

describe("TarParser rejects bad input with typed errors", () => {
  const cases: Array<[string, Buffer, string]> = [
    ["bad checksum", rawTar([rawHeader({ name: "a", badChecksum: true })]), "SHOAL_ERR_TAR_CHECKSUM"],
    ["absolute path", rawTar([rawHeader({ name: "/etc/passwd" })]), "SHOAL_ERR_TAR_BAD_PATH"],
    ["dot-dot path", rawTar([rawHeader({ name: "a/../../etc" })]), "SHOAL_ERR_TAR_BAD_PATH"],
    ["dot-dot hardlink target", rawTar([rawHeader({ name: "a", type: "1", linkname: "../x" })]), "SHOAL_ERR_TAR_BAD_PATH"],
    ["size past the end", rawTar([rawHeader({ name: "a", size: 100000 }), { data: Buffer.alloc(10) }], false), "SHOAL_ERR_TAR_TRUNCATED"],
    ["bad size field", rawTar([rawHeader({ name: "a", sizeField: "12x4" })]), "SHOAL_ERR_TAR_BAD_NUMBER"],
    ["huge PAX header", rawTar([rawHeader({ name: "x", type: "x", size: 1 << 30 })], false), "SHOAL_ERR_TAR_META_TOO_LARGE"],
    ["bogus PAX record length", rawTar([rawHeader({ name: "x", type: "x", size: 20 }), { data: Buffer.from("999999 path=abcdef\n\n") }, rawHeader({ name: "a" })]), "SHOAL_ERR_TAR_BAD_PAX"],
    ["PAX record without =", rawTar([rawHeader({ name: "x", type: "x", size: 10 }), { data: Buffer.from("10 pathab\n") }, rawHeader({ name: "a" })]), "SHOAL_ERR_TAR_BAD_PAX"],
    ["PAX header then end", rawTar([rawHeader({ name: "x", type: "x", size: 12 }), { data: Buffer.from("12 path=ab\n\n") }]), "SHOAL_ERR_TAR_TRUNCATED"],
    ["sparse file", rawTar([rawHeader({ name: "a", type: "S" })]), "SHOAL_ERR_TAR_UNSUPPORTED"],
    ["half a header", rawHeader({ name: "a" }).subarray(0, 300), "SHOAL_ERR_TAR_TRUNCATED"],
  ];
  for (const [name, tar, code] of cases) {
    it(name, () => {
      let err: unknown;
      try {
        parseAll(tar);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(LayerFormatError);
      expect((err as LayerFormatError).code).toBe(code);
      expect((err as Error).message).toContain("layer test");
      expect((err as LayerFormatError).position.tarOffset).toBeTypeOf("number");
    });
  }
});
