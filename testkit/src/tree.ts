/**
 * Snapshots of a directory tree (metadata, contents, xattrs, hardlinks) and
 * human-readable diffs between two snapshots, for comparing shoal's mounted
 * images with `umoci unpack` output.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { haveGetfattr, readXattrs } from "./xattr.ts";
import type { Xattrs } from "./xattr.ts";

/** File type of a node. */
export type NodeType = "file" | "dir" | "symlink" | "char" | "block" | "fifo" | "socket";

/** Everything compared about one path. */
export interface NodeInfo {
  type: NodeType;
  /** Permission bits incl. setuid/setgid/sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** st_size of files and symlinks; undefined for dirs and special files (fs-dependent). */
  size?: number;
  /** st_mtime in nanoseconds since the epoch. */
  mtimeNs: bigint;
  /** Hex sha256 of a regular file's contents. */
  sha256?: string;
  /** Target of a symlink. */
  linkTarget?: string;
  /** Device numbers of char/block devices. */
  rdevMajor?: number;
  rdevMinor?: number;
  /** name → hex value; undefined when xattrs were not captured, {} when none. */
  xattrs?: Xattrs;
  /** Sorted paths in this tree sharing this node's inode (only when there are ≥ 2). */
  hardlinks?: string[];
}

/** Field names of {@link NodeInfo}, for `diffTrees({ ignore })`. */
export type NodeField = keyof NodeInfo;

/**
 * A snapshot: relative path ("." for the root, "a/b" below it; "/" separated)
 * → info, iterated in sorted path order.
 */
export class TreeSnapshot extends Map<string, NodeInfo> {
  /** The directory that was snapshotted. */
  root = "";
  /** Whether xattrs were read (false if getfattr is unavailable or disabled). */
  xattrsCaptured = false;
  /** Caveats of this snapshot (e.g. why xattrs are missing). */
  notes: string[] = [];
}

/** Options of {@link snapshotTree}. */
export interface SnapshotOptions {
  /** Read xattrs: true (fail if getfattr is missing), false, or "auto" (default: skip with a note). */
  xattrs?: boolean | "auto";
  /** xattr names to leave out (default ["security.selinux"], labels are host policy). */
  ignoreXattrs?: string[];
  /** Hash file contents (default true). */
  hash?: boolean;
  signal?: AbortSignal;
}

/** Linux major/minor from a dev_t. */
export function devNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

function typeOf(mode: bigint): NodeType {
  switch (Number(mode) & 0o170000) {
    case 0o100000: return "file";
    case 0o040000: return "dir";
    case 0o120000: return "symlink";
    case 0o020000: return "char";
    case 0o060000: return "block";
    case 0o010000: return "fifo";
    case 0o140000: return "socket";
    default: throw new Error(`unknown file type in mode ${mode.toString(8)}`);
  }
}

/** Hex sha256 of the file at `path`, streamed. */
export async function sha256File(path: string, signal?: AbortSignal): Promise<string> {
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h, { signal });
  return h.digest("hex");
}

/**
 * Walks `root` with lstat (never following symlinks) and records every node,
 * including `root` itself as ".". Hardlink groups are computed among the
 * paths of this tree (an inode with links outside the tree is not a group).
 */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<TreeSnapshot> {
  const { signal } = opts;
  const entries: Array<[string, NodeInfo]> = [];
  const inodes = new Map<string, string[]>();
  const visit = async (rel: string): Promise<void> => {
    signal?.throwIfAborted();
    const abs = rel === "." ? root : join(root, rel);
    const st = await lstat(abs, { bigint: true });
    const type = typeOf(st.mode);
    const info: NodeInfo = {
      type, mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: st.mtimeNs,
    };
    if (type === "file" || type === "symlink") info.size = Number(st.size);
    if (type === "file" && opts.hash !== false) info.sha256 = await sha256File(abs, signal);
    if (type === "symlink") info.linkTarget = await readlink(abs);
    if (type === "char" || type === "block") {
      const { major, minor } = devNumbers(st.rdev);
      info.rdevMajor = major;
      info.rdevMinor = minor;
    }
    if (type !== "dir") {
      const key = `${st.dev}:${st.ino}`;
      const group = inodes.get(key);
      if (group) group.push(rel);
      else inodes.set(key, [rel]);
    }
    entries.push([rel, info]);
    if (type === "dir") {
      const names = (await readdir(abs)).sort();
      for (const n of names) await visit(rel === "." ? n : `${rel}/${n}`);
    }
  };
  await visit(".");
  const snap = new TreeSnapshot();
  snap.root = root;
  const byPath = new Map(entries);
  for (const group of inodes.values()) {
    if (group.length < 2) continue;
    const sorted = [...group].sort();
    for (const p of sorted) {
      const n = byPath.get(p);
      if (n) n.hardlinks = sorted;
    }
  }
  const want = opts.xattrs ?? "auto";
  if (want === false) {
    snap.notes.push("xattrs not captured (disabled)");
  } else if (!(await haveGetfattr())) {
    if (want === true) throw new Error("snapshotTree: getfattr not found (apt-get install attr)");
    snap.notes.push("xattrs not captured: getfattr not found (apt-get install attr)");
  } else {
    const ignore = new Set(opts.ignoreXattrs ?? ["security.selinux"]);
    const abs = entries.map(([rel]) => (rel === "." ? root : join(root, rel)));
    const found = await readXattrs(abs, { signal });
    for (const [i, [, info]] of entries.entries()) {
      const x = found.get(abs[i] ?? "") ?? {};
      info.xattrs = Object.fromEntries(Object.entries(x).filter(([k]) => !ignore.has(k)).sort(([a], [b]) => (a < b ? -1 : 1)));
    }
    snap.xattrsCaptured = true;
  }
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [p, n] of entries) snap.set(p, n);
  return snap;
}

/** Options of {@link diffTrees}. */
export interface DiffOptions {
  /** Fields not compared (e.g. ["mtimeNs"]). */
  ignore?: NodeField[];
  /** Paths (and, for directories, everything below them) not compared. */
  ignorePaths?: string[];
  /**
   * A tree mounted from one filesystem per layer (shoal's block mode, like
   * containerd's own overlayfs snapshotter) cannot join a hardlink into a
   * lower layer to that layer's inode: `b`'s hardlink groups may be split
   * parts of `a`'s (each a subset of it), never anything else.
   */
  layeredHardlinks?: boolean;
  /**
   * Compare the root "." too (default false: the root directory is created by
   * the unpacker, e.g. umoci's rootfs, so its mode/mtime/owner are not image data).
   */
  compareRoot?: boolean;
}

function show(v: unknown): string {
  if (v === undefined) return "-";
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "number") return String(v);
  return JSON.stringify(v);
}

const FIELDS: NodeField[] = [
  "type", "mode", "uid", "gid", "size", "mtimeNs", "sha256", "linkTarget", "rdevMajor", "rdevMinor", "xattrs", "hardlinks",
];

/**
 * Differences between snapshots `a` and `b`, one line each ("only in a: p",
 * "p: mode 0o644 != 0o755", ...), sorted by path; empty when equal. xattrs are
 * compared only when both snapshots captured them.
 */
export function diffTrees(a: ReadonlyMap<string, NodeInfo>, b: ReadonlyMap<string, NodeInfo>, opts: DiffOptions = {}): string[] {
  const ignore = new Set<NodeField>(opts.ignore ?? []);
  const skipPath = (p: string): boolean =>
    (p === "." && !opts.compareRoot) || (opts.ignorePaths ?? []).some((q) => p === q || p.startsWith(`${q}/`));
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const out: string[] = [];
  for (const p of paths) {
    if (skipPath(p)) continue;
    const x = a.get(p);
    const y = b.get(p);
    if (!x || !y) {
      out.push(`only in ${x ? "a" : "b"}: ${p} (${(x ?? y)?.type})`);
      continue;
    }
    for (const f of FIELDS) {
      if (ignore.has(f)) continue;
      if (f === "xattrs" && (x.xattrs === undefined || y.xattrs === undefined)) continue;
      if (f === "hardlinks" && opts.layeredHardlinks && (y.hardlinks ?? [p]).every((q) => (x.hardlinks ?? [p]).includes(q))) continue;
      const vx = f === "mode" ? `0o${x.mode.toString(8)}` : show(x[f]);
      const vy = f === "mode" ? `0o${y.mode.toString(8)}` : show(y[f]);
      if (vx !== vy) out.push(`${p}: ${f} ${vx} != ${vy}`);
    }
  }
  return out;
}
