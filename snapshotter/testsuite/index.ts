/**
 * containerd's expectations of a snapshotter, as one suite of checks (the
 * behaviour containerd's own snapshots/testsuite holds its snapshotters
 * to): chains of prepare, commit and view whose mounts really mount, with
 * files, deletions and read-only views; the errors containerd reads back;
 * labels and their updates; List filters; Usage; removal order. Run it
 * against shoal's snapshotter and against containerd's own overlayfs
 * snapshotter through containerd, so that the suite itself is checked
 * against the reference.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { GrpcStatusName } from "@shoal/base";
import { describe, it } from "vitest";
import type { SnapshotsClient } from "../src/index.ts";
import { SnapshotsCallError } from "../src/index.ts";

const run = promisify(execFile);

/** A snapshotter under test: its client, and a scratch directory to mount in. */
export interface SnapshotterSubject {
  api: SnapshotsClient;
  scratch: string;
  /** Makes keys unique to this check (checks share one snapshotter). */
  prefix: string;
}

/** One check. */
export interface SnapshotterCheck {
  name: string;
  run(s: SnapshotterSubject): Promise<void>;
}

function fail(message: string): never {
  throw new Error(`snapshotter contract broken: ${message}`);
}

function assert(ok: unknown, message: string): asserts ok {
  if (!ok) fail(message);
}

async function rejects(p: Promise<unknown>, status: GrpcStatusName, what: string): Promise<void> {
  try {
    await p;
  } catch (err) {
    if (err instanceof SnapshotsCallError && err.status === status) return;
    fail(`${what}: expected ${status}, got ${String(err)}`);
  }
  fail(`${what}: expected ${status}, but it succeeded`);
}

/** Mount `mounts` at a fresh directory under `scratch`, run `fn` on it, unmount. */
export async function withMounted<T>(scratch: string, mounts: Array<{ type: string; source: string; options: string[] }>, fn: (dir: string) => Promise<T>): Promise<T> {
  assert(mounts.length === 1, `expected one mount, got ${mounts.length}`);
  const m = mounts[0]!;
  const dir = await mkdtemp(join(scratch, "m-"));
  const opts = m.options.filter((o) => o !== "rbind" && o !== "bind");
  const args = m.type === "bind"
    ? ["--rbind", ...(opts.length ? ["-o", opts.join(",")] : []), m.source, dir]
    : ["-t", m.type, ...(opts.length ? ["-o", opts.join(",")] : []), m.source, dir];
  await run("mount", args);
  // a read-only bind needs a remount to take the flag
  if (m.type === "bind" && opts.includes("ro")) await run("mount", ["-o", "remount,ro,bind", dir]);
  try {
    return await fn(dir);
  } finally {
    await run("umount", [dir]);
    await rm(dir, { recursive: true, force: true });
  }
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Every check of the snapshotter contract. */
export const snapshotterSuite: readonly SnapshotterCheck[] = [
  {
    name: "prepares a writable bind, commits it, and views it read-only with its files",
    async run({ api, scratch, prefix }) {
      const base = `${prefix}base`;
      await withMounted(scratch, await api.prepare(`${prefix}a`), async (d) => {
        await writeFile(join(d, "hello"), "world");
        await mkdir(join(d, "dir"));
      });
      await api.commit(base, `${prefix}a`, { "test/l": "v" });
      const info = await api.stat(base);
      assert(info.kind === "committed" && info.parent === "" && info.labels["test/l"] === "v", `stat of committed: ${JSON.stringify(info)}`);
      await rejects(api.stat(`${prefix}a`), "NOT_FOUND", "stat of the committed active key");
      await withMounted(scratch, await api.view(`${prefix}v`, base), async (d) => {
        assert((await readFile(join(d, "hello"), "utf8")) === "world", "the view shows the committed file");
        let refused = false;
        await writeFile(join(d, "new"), "x").catch(() => (refused = true));
        assert(refused, "a view is read-only");
      });
      assert((await api.stat(`${prefix}v`)).kind === "view", "stat of a view");
    },
  },
  {
    name: "stacks a chain: lower files show through, deletions and changes stay in their layer",
    async run({ api, scratch, prefix }) {
      await withMounted(scratch, await api.prepare(`${prefix}l1`), async (d) => {
        await writeFile(join(d, "keep"), "1");
        await writeFile(join(d, "gone"), "1");
        await writeFile(join(d, "change"), "1");
      });
      await api.commit(`${prefix}c1`, `${prefix}l1`);
      const mounts = await api.prepare(`${prefix}l2`, `${prefix}c1`);
      assert(JSON.stringify(await api.mounts(`${prefix}l2`)) === JSON.stringify(mounts), "Mounts repeats Prepare's mounts");
      await withMounted(scratch, mounts, async (d) => {
        assert((await readFile(join(d, "keep"), "utf8")) === "1", "a lower file shows through");
        await rm(join(d, "gone"));
        await writeFile(join(d, "change"), "2");
      });
      await api.commit(`${prefix}c2`, `${prefix}l2`);
      assert((await api.stat(`${prefix}c2`)).parent === `${prefix}c1`, "the parent is recorded");
      await withMounted(scratch, await api.view(`${prefix}v2`, `${prefix}c2`), async (d) => {
        assert(!(await exists(join(d, "gone"))), "a deleted file stays deleted");
        assert((await readFile(join(d, "change"), "utf8")) === "2", "a changed file shows its new bytes");
      });
      await withMounted(scratch, await api.view(`${prefix}v1`, `${prefix}c1`), async (d) => {
        assert((await readFile(join(d, "change"), "utf8")) === "1" && (await exists(join(d, "gone"))), "the lower layer is unchanged");
      });
    },
  },
  {
    name: "refuses what containerd expects refused, with the status its errdefs read",
    async run({ api, prefix }) {
      await api.prepare(`${prefix}x`);
      await rejects(api.prepare(`${prefix}x`), "ALREADY_EXISTS", "a key prepared twice");
      await rejects(api.prepare(`${prefix}y`, `${prefix}nope`), "NOT_FOUND", "a missing parent");
      await rejects(api.prepare(`${prefix}y`, `${prefix}x`), "INVALID_ARGUMENT", "an active parent");
      await rejects(api.commit(`${prefix}cx`, `${prefix}nope`), "NOT_FOUND", "a commit of a missing key");
      await api.commit(`${prefix}cx`, `${prefix}x`);
      await api.view(`${prefix}vx`, `${prefix}cx`);
      await rejects(api.commit(`${prefix}cy`, `${prefix}vx`), "FAILED_PRECONDITION", "a commit of a view");
      await rejects(api.mounts(`${prefix}cx`), "FAILED_PRECONDITION", "the mounts of a committed snapshot");
      await api.prepare(`${prefix}z`);
      await rejects(api.commit(`${prefix}cx`, `${prefix}z`), "ALREADY_EXISTS", "a commit onto a taken name");
      await rejects(api.remove(`${prefix}nope`), "NOT_FOUND", "a remove of a missing key");
    },
  },
  {
    name: "removes a chain top down, and refuses to remove a parent first",
    async run({ api, prefix }) {
      await api.prepare(`${prefix}r1`);
      await api.commit(`${prefix}rc1`, `${prefix}r1`);
      await api.prepare(`${prefix}r2`, `${prefix}rc1`);
      await rejects(api.remove(`${prefix}rc1`), "FAILED_PRECONDITION", "a remove of a parent");
      await api.remove(`${prefix}r2`);
      await api.remove(`${prefix}rc1`);
      await rejects(api.stat(`${prefix}rc1`), "NOT_FOUND", "a removed snapshot");
    },
  },
  {
    name: "keeps labels, and updates only the ones the field mask names",
    async run({ api, prefix }) {
      await api.prepare(`${prefix}u`, "", { "test/a": "1", "test/b": "2" });
      assert((await api.stat(`${prefix}u`)).labels["test/b"] === "2", "labels kept at prepare");
      let i = await api.update(`${prefix}u`, { "test/a": "10", "test/c": "3" }, ["labels.test/a", "labels.test/b"]);
      assert(i.labels["test/a"] === "10" && !("test/b" in i.labels) && !("test/c" in i.labels), `masked update: ${JSON.stringify(i.labels)}`);
      i = await api.update(`${prefix}u`, { "test/d": "4" }, ["labels"]);
      assert(JSON.stringify(i.labels) === JSON.stringify({ "test/d": "4" }), `update of labels: ${JSON.stringify(i.labels)}`);
      assert(i.kind === "active" && i.name === `${prefix}u`, "name and kind stay");
      assert((await api.stat(`${prefix}u`)).labels["test/d"] === "4", "the update is stored");
    },
  },
  {
    name: "lists with containerd's filters: labels, parent, kind, and alternatives",
    async run({ api, prefix }) {
      await api.prepare(`${prefix}f1`);
      // a commit's labels are the committed snapshot's (the active one's are not carried over)
      await api.commit(`${prefix}fc`, `${prefix}f1`, { "test/group": prefix, "containerd.io/snapshot.ref": `${prefix}ref` });
      await api.prepare(`${prefix}f2`, `${prefix}fc`, { "test/group": prefix });
      const names = async (filters: string[]) => (await api.list(filters)).map((i) => i.name).filter((n) => n.startsWith(prefix)).sort();
      assert(JSON.stringify(await names([`labels."test/group"==${prefix}`])) === JSON.stringify([`${prefix}f2`, `${prefix}fc`]), "a label filter");
      assert(JSON.stringify(await names([`parent==${prefix}fc`])) === JSON.stringify([`${prefix}f2`]), "a parent filter");
      assert(JSON.stringify(await names([`labels."containerd.io/snapshot.ref"==${prefix}ref,parent==""`])) === JSON.stringify([`${prefix}fc`]), "the remote-snapshot lookup containerd makes");
      assert(JSON.stringify(await names([`kind==active,labels."test/group"==${prefix}`])) === JSON.stringify([`${prefix}f2`]), "a kind filter");
      assert(JSON.stringify(await names([`name==${prefix}f2`, `name==${prefix}fc`])) === JSON.stringify([`${prefix}f2`, `${prefix}fc`]), "two filters are alternatives");
    },
  },
  {
    name: "reports the usage of what a snapshot holds",
    async run({ api, scratch, prefix }) {
      await withMounted(scratch, await api.prepare(`${prefix}s`), async (d) => {
        await writeFile(join(d, "big"), Buffer.alloc(1 << 20, 1));
        await writeFile(join(d, "small"), "x");
      });
      const u = await api.usage(`${prefix}s`);
      assert(u.size >= 1 << 20 && u.inodes >= 3, `usage ${JSON.stringify(u)}`);
    },
  },
];

/** Register every check as a vitest test; `subject` gives a fresh prefix each time. */
export function describeSnapshotterSuite(title: string, subject: () => SnapshotterSubject | Promise<SnapshotterSubject>): void {
  describe(title, () => {
    let n = 0;
    for (const check of snapshotterSuite) {
      it(check.name, async () => {
        const s = await subject();
        await check.run({ ...s, prefix: `${s.prefix}${++n}-` });
      });
    }
  });
}
