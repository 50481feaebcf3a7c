import { createHash } from "node:crypto";
import { chmod, link, lutimes, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../src/exec.ts";
import { devNumbers, diffTrees, snapshotTree } from "../src/tree.ts";
import { haveGetfattr, parseGetfattr } from "../src/xattr.ts";

let tmp: string;
const canXattr = await haveGetfattr();
const isRoot = process.getuid?.() === 0;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "shoal-tree-"));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Builds the same small tree at `root`. */
async function build(root: string): Promise<void> {
  await mkdir(join(root, "d/sub"), { recursive: true });
  await writeFile(join(root, "d/a.txt"), "alpha\n");
  await writeFile(join(root, "d/héllo wörld"), "utf-8\n");
  await link(join(root, "d/a.txt"), join(root, "d/sub/a-link"));
  await symlink("../a.txt", join(root, "d/sub/sym"));
  await writeFile(join(root, "suid"), "x");
  await chmod(join(root, "suid"), 0o4755);
  await run("mkfifo", [join(root, "fifo")]);
  if (isRoot) await run("mknod", [join(root, "null"), "c", "1", "3"]);
  if (canXattr) await run("setfattr", ["-n", "user.test", "-v", "0x00ff", join(root, "d/a.txt")]);
  const t = 981_173_106; // whole seconds: Node passes fractional times as doubles
  const paths = ["d/a.txt", "d/héllo wörld", "d/sub/sym", "suid", "fifo", ...(isRoot ? ["null"] : []), "d/sub", "d", "."];
  for (const p of paths) await lutimes(join(root, p), t, t);
}

describe("snapshotTree / diffTrees", () => {
  it("records types, modes, contents, links, devices, xattrs and hardlink groups", async () => {
    const root = join(tmp, "one");
    await mkdir(root);
    await build(root);
    const s = await snapshotTree(root);
    expect([...s.keys()]).toEqual([
      ".", "d", "d/a.txt", "d/héllo wörld", "d/sub", "d/sub/a-link", "d/sub/sym", "fifo", ...(isRoot ? ["null"] : []), "suid",
    ]);
    expect(s.get("d/a.txt")).toMatchObject({
      type: "file", size: 6, mtimeNs: 981173106000000000n, hardlinks: ["d/a.txt", "d/sub/a-link"],
      sha256: createHash("sha256").update("alpha\n").digest("hex"),
    });
    expect(s.get("d/sub/sym")).toMatchObject({ type: "symlink", linkTarget: "../a.txt", size: 8 });
    expect(s.get("d/sub/sym")?.hardlinks).toBeUndefined();
    expect(s.get("suid")?.mode).toBe(0o4755);
    expect(s.get("fifo")?.type).toBe("fifo");
    if (isRoot) expect(s.get("null")).toMatchObject({ type: "char", rdevMajor: 1, rdevMinor: 3 });
    if (canXattr) {
      expect(s.xattrsCaptured).toBe(true);
      expect(s.get("d/a.txt")?.xattrs).toEqual({ "user.test": "00ff" });
      expect(s.get("suid")?.xattrs).toEqual({});
    } else {
      expect(s.notes.join()).toMatch(/getfattr/);
    }
  });

  it("finds no difference between identical trees and reports each mutation", async () => {
    const a = join(tmp, "a");
    const b = join(tmp, "b");
    await mkdir(a);
    await mkdir(b);
    await build(a);
    await build(b);
    const sa = await snapshotTree(a);
    expect(diffTrees(sa, await snapshotTree(b))).toEqual([]);

    await writeFile(join(b, "d/héllo wörld"), "changed\n");
    await chmod(join(b, "suid"), 0o755);
    await rm(join(b, "d/sub/a-link"));
    await writeFile(join(b, "extra"), "");
    if (canXattr) await run("setfattr", ["-n", "user.test", "-v", "0x01", join(b, "d/a.txt")]);
    const sb = await snapshotTree(b);
    const diff = diffTrees(sa, sb);
    expect(diff).toContain("only in a: d/sub/a-link (file)");
    expect(diff).toContain("only in b: extra (file)");
    expect(diff).toContain("suid: mode 0o4755 != 0o755");
    expect(diff.some((d) => d.startsWith("d/héllo wörld: sha256 "))).toBe(true);
    expect(diff.some((d) => d.startsWith("d/héllo wörld: mtimeNs "))).toBe(true);
    expect(diff).toContain('d/a.txt: hardlinks ["d/a.txt","d/sub/a-link"] != -');
    if (canXattr) expect(diff).toContain('d/a.txt: xattrs {"user.test":"00ff"} != {"user.test":"01"}');
    // The root is ignored unless asked for; fields and paths can be ignored.
    expect(diff.some((d) => d.startsWith(".:"))).toBe(false);
    expect(diffTrees(sa, sb, { compareRoot: true }).some((d) => d.startsWith(".: mtimeNs"))).toBe(true);
    const narrowed = diffTrees(sa, sb, { ignore: ["mtimeNs", "sha256", "size", "hardlinks", "xattrs"], ignorePaths: ["d/sub", "extra"] });
    expect(narrowed).toEqual(["suid: mode 0o4755 != 0o755"]);
  });

  it("with layeredHardlinks, a hardlink group may split into subsets, never join what was apart", () => {
    const f = (hardlinks?: string[]) => ({ type: "file" as const, mode: 0o644, uid: 0, gid: 0, size: 1, mtimeNs: 0n, ...(hardlinks ? { hardlinks } : {}) });
    const whole = new Map([["a", f(["a", "b", "c"])], ["b", f(["a", "b", "c"])], ["c", f(["a", "b", "c"])], ["d", f()]]);
    const split = new Map([["a", f(["a", "b"])], ["b", f(["a", "b"])], ["c", f()], ["d", f()]]);
    const joined = new Map([["a", f(["a", "b", "c"])], ["b", f(["a", "b", "c"])], ["c", f(["a", "b", "c", "d"])], ["d", f(["c", "d"])]]);
    expect(diffTrees(whole, split)).toHaveLength(3);
    expect(diffTrees(whole, split, { layeredHardlinks: true })).toEqual([]);
    expect(diffTrees(whole, joined, { layeredHardlinks: true })).toEqual(['c: hardlinks ["a","b","c"] != ["a","b","c","d"]', 'd: hardlinks - != ["c","d"]']);
  });

  it("decodes device numbers and getfattr's path quoting", () => {
    expect(devNumbers(0x0103n)).toEqual({ major: 1, minor: 3 });
    expect(devNumbers((200n << 8n) | (70000n & 0xffn) | ((70000n & ~0xffn) << 12n))).toEqual({ major: 200, minor: 70000 });
    const parsed = parseGetfattr("# file: /x/a\\134b\\012c\nuser.a=0x31\nuser.e=0x\n\n# file: /x/é\ntrusted.t=0x79\n\n");
    expect([...parsed.entries()]).toEqual([
      ["/x/a\\b\nc", { "user.a": "31", "user.e": "" }],
      ["/x/é", { "trusted.t": "79" }],
    ]);
  });
});
