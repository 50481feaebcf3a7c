/**
 * The tar entries of each layer of the edge-case fixture image (see
 * `edgeCaseImage` in fixtures.ts for the overview). Every parent directory
 * has its own entry, so `umoci unpack` is deterministic.
 */
import { randomBytes, textBytes } from "./prng.ts";
import type { TarSpec } from "./tar-writer.ts";

/** Which xattr namespaces the fixture uses (all round-trip through umoci as root on ext4). */
export interface XattrChoice {
  user: boolean;
  trusted: boolean;
  security: boolean;
}

const t = (s: string): Uint8Array => new TextEncoder().encode(s);
const dir = (path: string, extra: Partial<TarSpec> = {}): TarSpec => ({ path, type: "dir", ...extra });
const file = (path: string, data: Uint8Array, extra: Partial<TarSpec> = {}): TarSpec => ({ path, type: "file", data, ...extra });

/** Layer 0: base tree with every entry type, modes, owners, mtimes and xattrs. */
export function baseLayer(seed: number, x: XattrChoice): TarSpec[] {
  const xa = (user: Record<string, string | Uint8Array>, trusted: Record<string, string>): Record<string, string | Uint8Array> => ({
    ...(x.user ? user : {}), ...(x.trusted ? trusted : {}),
  });
  return [
    file("rootfile", t("top-level file, whited out by layer 2\n")),
    dir("etc", { mtime: 1_600_000_000 }),
    file("etc/hostname", t("shoal-fixture\n")),
    file("etc/passwd", t("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/sbin/nologin\n")),
    file("etc/empty", new Uint8Array(0)),
    dir("usr"),
    dir("usr/bin"),
    file("usr/bin/setuid", randomBytes(seed + 1, 8192), { mode: 0o4755 }),
    file("usr/bin/setgid", randomBytes(seed + 2, 4097), { mode: 0o2755, gid: 50 }),
    file("usr/bin/all-special", randomBytes(seed + 3, 511), { mode: 0o7755, uid: 1000 }),
    file("usr/bin/no-perms", t("mode 000\n"), { mode: 0o000 }),
    dir("tmp", { mode: 0o1777 }),
    dir("srv", { mode: 0o750, uid: 1000, gid: 1000 }),
    dir("dev"),
    { path: "dev/null", type: "char", devmajor: 1, devminor: 3, mode: 0o666 },
    { path: "dev/loop0", type: "block", devmajor: 7, devminor: 0, mode: 0o660, gid: 6 },
    { path: "dev/big-minor", type: "char", devmajor: 200, devminor: 70000, mode: 0o600 },
    { path: "dev/fifo", type: "fifo", mode: 0o600 },
    dir("wh"),
    file("wh/gone-file.txt", t("whited out by layer 2\n")),
    file("wh/keep.txt", t("stays\n")),
    file("wh/recreated", t("old content, whited out then re-created in layer 2\n")),
    dir("wh/gone-dir"),
    file("wh/gone-dir/a", t("a\n")),
    dir("wh/gone-dir/sub"),
    file("wh/gone-dir/sub/b", t("b\n")),
    dir("opaque"),
    file("opaque/old1", t("old1\n")),
    file("opaque/keep-name", t("old content of a name re-created under the opaque dir\n")),
    dir("opaque/sub"),
    file("opaque/sub/old2", t("old2\n")),
    dir("replace"),
    file("replace/file-becomes-dir", t("a file that layer 2 replaces with a directory\n")),
    dir("replace/dir-becomes-file"),
    file("replace/dir-becomes-file/child", t("child of a directory that layer 2 replaces with a file\n")),
    dir("links"),
    file("links/target.txt", t("hardlink target\n"), { mode: 0o640, uid: 7, gid: 8 }),
    { path: "links/hard1", type: "hardlink", linkname: "links/target.txt" },
    { path: "links/hard2", type: "hardlink", linkname: "links/target.txt" },
    file("links/broken-later", t("old inode, kept by broken-later-peer\n")),
    { path: "links/broken-later-peer", type: "hardlink", linkname: "links/broken-later" },
    { path: "links/rel", type: "symlink", linkname: "target.txt" },
    { path: "links/abs", type: "symlink", linkname: "/etc/hostname" },
    { path: "links/dangling", type: "symlink", linkname: "../nowhere/missing" },
    { path: "links/dir-link", type: "symlink", linkname: "../etc" },
    { path: "links/self-loop", type: "symlink", linkname: "self-loop" },
    { path: "links/hard-to-symlink", type: "hardlink", linkname: "links/rel" },
    dir("meta"),
    file("meta/owned-1000", t("1000:1000\n"), { uid: 1000, gid: 1000, uname: "someone", gname: "somegroup" }),
    file("meta/nobody", t("65534\n"), { uid: 65534, gid: 65534 }),
    file("meta/octal-limit", t("2097151\n"), { uid: 2_097_151, gid: 2_097_151, format: "ustar" }),
    file("meta/pax-big-ids", t("3000000000\n"), { uid: 3_000_000_000, gid: 3_000_000_001 }),
    file("meta/gnu-big-ids", t("base-256\n"), { uid: 2_097_152, gid: 4_294_967_294, format: "gnu" }),
    file("meta/mtime-epoch", t("epoch\n"), { mtime: 0 }),
    file("meta/mtime-1980", t("1980\n"), { mtime: 315_532_800 }),
    file("meta/mtime-future", t("2100\n"), { mtime: 4_102_444_800 }),
    file("meta/mtime-frac", t("ns\n"), { mtime: 1_234_567_890, mtimeNsec: 123_456_789 }),
    file("meta/mtime-half", t("half\n"), { mtime: 1_600_000_000, mtimeNsec: 500_000_000 }),
    { path: "meta/symlink-mtime", type: "symlink", linkname: "mtime-epoch", mtime: 5 },
    file("meta/pax-forced", t("every field in PAX records\n"), {
      uid: 12, gid: 34, uname: "u", gname: "g",
      forcePax: ["path", "size", "uid", "gid", "uname", "gname", "mtime"],
      paxRecords: { "SHOAL.comment": "unknown PAX keys are ignored" },
    }),
    file("meta/héllo wörld ✓.txt", t("utf-8 name\n")),
    file("meta/with space & 'quotes'", t("spaces\n")),
    file("meta/incompressible.bin", randomBytes(seed + 4, 200_000)),
    file("meta/compressible.txt", textBytes(seed + 5, 300_000)),
    dir("xattr", { xattrs: xa({ "user.dir": "on a directory" }, { "trusted.dir": "y" }) }),
    file("xattr/user", t("xattrs\n"), {
      xattrs: xa({ "user.comment": "hello", "user.binary": new Uint8Array([0, 1, 2, 0xfe, 0xff]) }, { "trusted.shoal": "1" }),
    }),
    file("xattr/trusted-only", t("trusted\n"), { xattrs: xa({}, { "trusted.shoal.only": "trusted without user" }) }),
    ...(x.security ? [file("xattr/security", t("security\n"), { xattrs: { "security.shoal": "1" } })] : []),
    ...(x.trusted ? [{ path: "xattr/symlink", type: "symlink", linkname: "user", xattrs: { "trusted.link": "on a symlink" } } satisfies TarSpec] : []),
    ...(x.trusted ? [{ path: "xattr/fifo", type: "fifo", xattrs: { "trusted.fifo": "on a fifo" } } satisfies TarSpec] : []),
  ];
}

/** Deep directories of `depth` components of 41 bytes each under `root`. */
function deepDirs(root: string, depth: number): string[] {
  const out: string[] = [];
  let p = root;
  for (let i = 1; i <= depth; i++) {
    p = `${p}/level${i}-${"a".repeat(34)}`;
    out.push(p);
  }
  return out;
}

/** Layer 1: long names and link targets in ustar (prefix), PAX and GNU form. */
export function longNamesLayer(seed: number): TarSpec[] {
  const pax = deepDirs("long", 7);
  const gnu = deepDirs("long-gnu", 7);
  const paxDeep = `${pax[6]}/pax-deep.txt`;
  const gnuDeep = `${gnu[6]}/gnu-deep.txt`;
  const prefix155 = `long/${"p".repeat(150)}`;
  const relDeep = paxDeep.slice("long/".length);
  return [
    dir("long"),
    ...pax.map((p) => dir(p)),
    file(`long/${"n".repeat(95)}`, t("path of exactly 100 bytes\n"), { format: "ustar" }),
    file(`long/${"o".repeat(96)}`, t("path of 101 bytes, ustar prefix\n"), { format: "ustar" }),
    file(`${pax[1]}/ustar-prefix.txt`, t("ustar prefix/name split\n"), { format: "ustar" }),
    file(paxDeep, randomBytes(seed + 10, 3000), { format: "pax" }),
    file(`long/${"f".repeat(200)}`, t("one 200-byte component\n")),
    dir(prefix155),
    file(`${prefix155}/${"q".repeat(100)}`, t("256-byte path: 155-byte prefix + 100-byte name\n"), { format: "ustar" }),
    file(`${pax[0]}/${"ü".repeat(60)}.txt`, t("long utf-8 name\n")),
    file("long/forced-pax-path", t("short path in a PAX record\n"), { forcePax: ["path"] }),
    { path: "long/link-to-deep", type: "symlink", linkname: relDeep },
    { path: "long/link-dangling-long", type: "symlink", linkname: `/${"z".repeat(300)}` },
    { path: "long/hard-to-deep", type: "hardlink", linkname: paxDeep },
    { path: `${pax[5]}/hard-deep-to-deep`, type: "hardlink", linkname: paxDeep },
    dir("long-gnu", { format: "gnu" }),
    ...gnu.map((p) => dir(p, { format: "gnu" })),
    file(gnuDeep, randomBytes(seed + 11, 5000), { format: "gnu" }),
    file(`long-gnu/${"g".repeat(150)}`, t("gnu long name\n"), { format: "gnu" }),
    { path: "long-gnu/link-to-deep", type: "symlink", linkname: gnuDeep.slice("long-gnu/".length), format: "gnu" },
    { path: "long-gnu/hard-to-deep", type: "hardlink", linkname: gnuDeep, format: "gnu" },
    { path: `${gnu[6]}/hard-deep-to-pax`, type: "hardlink", linkname: paxDeep, format: "gnu" },
  ];
}

/**
 * Layer 2 (stored uncompressed, GNU format, "./"-prefixed like GNU tar, padded
 * to 10240-byte records): whiteouts, opaque dir, type replacements, metadata
 * changes, a hardlink broken by replacement and (optionally) one to a file of
 * a lower layer.
 */
export function changesLayer(seed: number, crossLayerHardlink: boolean): TarSpec[] {
  const entries: TarSpec[] = [
    dir(".", { mtime: 1_650_000_000 }),
    { path: ".wh.rootfile", type: "file" },
    dir("etc", { mtime: 1_650_000_001 }),
    file("etc/hostname", t("shoal-fixture-v2\n"), { mode: 0o600 }),
    dir("usr", { mode: 0o700, uid: 2, gid: 3, mtime: 1_650_000_002 }),
    dir("wh"),
    { path: "wh/.wh.gone-file.txt", type: "file" },
    { path: "wh/.wh.gone-dir", type: "file" },
    { path: "wh/.wh.never-existed", type: "file" },
    { path: "wh/.wh.recreated", type: "file" },
    file("wh/recreated", t("new content after whiteout\n")),
    dir("opaque", { mode: 0o775 }),
    { path: "opaque/.wh..wh..opq", type: "file" },
    file("opaque/keep-name", t("new content under the opaque dir\n")),
    file("opaque/new1", randomBytes(seed + 20, 1500)),
    dir("opaque/sub3"),
    file("opaque/sub3/new3", t("new3\n")),
    dir("replace"),
    dir("replace/file-becomes-dir"),
    file("replace/file-becomes-dir/child", t("child of the new dir\n")),
    file("replace/dir-becomes-file", t("now a file\n")),
    dir("links"),
    file("links/broken-later", t("new inode; broken-later-peer keeps the old one\n")),
    dir("meta"),
    { path: "meta/owned-1000", type: "symlink", linkname: "nobody" },
    file("meta/gnu-huge-ids", t("base-256 3000000000\n"), { uid: 3_000_000_000, gid: 3_000_000_000 }),
  ];
  if (crossLayerHardlink) entries.push({ path: "links/cross", type: "hardlink", linkname: "links/target.txt" });
  return entries.map((e) => ({
    ...e,
    path: e.path === "." ? "./" : `./${e.path}`,
    ...(e.type === "hardlink" ? { linkname: `./${e.linkname}` } : {}),
  }));
}

/** Layer 4: `count` small files (0..4 KiB, text or random) in directories of 100. */
export function manySmallFilesLayer(seed: number, count: number): TarSpec[] {
  const entries: TarSpec[] = [dir("many")];
  const dirs = Math.ceil(count / 100);
  for (let d = 0; d < dirs; d++) {
    const dn = `many/d${String(d).padStart(3, "0")}`;
    entries.push(dir(dn));
    for (let i = d * 100; i < Math.min(count, (d + 1) * 100); i++) {
      const size = (i * 2654435761) % 4097;
      const data = i % 2 === 0 ? textBytes(seed + 1000 + i, size) : randomBytes(seed + 1000 + i, size);
      entries.push(file(`${dn}/f${String(i).padStart(5, "0")}`, data, { mtime: 1_700_000_000 + i }));
    }
  }
  return entries;
}
