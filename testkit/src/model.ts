/**
 * A small, independent model of how OCI layers apply (the behaviour of
 * `umoci unpack` as root), used as a test oracle: it predicts the snapshot of
 * the unpacked rootfs from the fixture's tar entries alone.
 */
import { createHash } from "node:crypto";
import { DEFAULT_MTIME } from "./tar-writer.ts";
import type { TarSpec } from "./tar-writer.ts";
import type { NodeInfo, NodeType } from "./tree.ts";

const WH_PREFIX = ".wh.";
const WH_OPAQUE = ".wh..wh..opq";

/** Normalizes a tar path to the snapshot form: no "./", no leading or trailing "/"; "." for the root. */
export function modelPath(p: string): string {
  const parts = p.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) throw new Error(`model: ".." in ${p}`);
  return parts.length === 0 ? "." : parts.join("/");
}

function parentOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : p.slice(0, i);
}

function hex(v: string | Uint8Array): string {
  return Buffer.from(typeof v === "string" ? new TextEncoder().encode(v) : v).toString("hex");
}

const NODE_TYPE: Record<Exclude<TarSpec["type"], "hardlink">, NodeType> = {
  file: "file", symlink: "symlink", char: "char", block: "block", dir: "dir", fifo: "fifo",
};

const DEFAULT_MODE: Record<NodeType, number> = {
  file: 0o644, symlink: 0o777, char: 0o666, block: 0o666, dir: 0o755, fifo: 0o644, socket: 0o755,
};

function nodeOf(e: TarSpec): NodeInfo {
  if (e.type === "hardlink") throw new Error("unreachable");
  const type = NODE_TYPE[e.type];
  const n: NodeInfo = {
    type,
    // Symlinks always report 0777 on Linux, whatever the header says.
    mode: type === "symlink" ? 0o777 : (e.mode ?? DEFAULT_MODE[type]),
    uid: e.uid ?? 0,
    gid: e.gid ?? 0,
    mtimeNs: BigInt(e.mtime ?? DEFAULT_MTIME) * 1_000_000_000n + BigInt(e.mtimeNsec ?? 0),
    // Go's archive/tar drops PAX records with empty values, so umoci never sets empty xattrs.
    xattrs: Object.fromEntries(
      Object.entries(e.xattrs ?? {}).filter(([, v]) => v.length > 0).map(([k, v]) => [k, hex(v)] as const).sort(([a], [b]) => (a < b ? -1 : 1)),
    ),
  };
  if (type === "file") {
    const data = e.data ?? new Uint8Array(0);
    n.size = data.length;
    n.sha256 = createHash("sha256").update(data).digest("hex");
  }
  if (type === "symlink") {
    n.linkTarget = e.linkname ?? "";
    n.size = Buffer.byteLength(n.linkTarget);
  }
  if (type === "char" || type === "block") {
    n.rdevMajor = e.devmajor ?? 0;
    n.rdevMinor = e.devminor ?? 0;
  }
  return n;
}

/**
 * Applies `layers` (each a list of tar entries, in order) as umoci does and
 * returns the expected snapshot (same shape as `snapshotTree`, minus the root
 * "." unless a layer has a root entry). Rules: a `.wh.NAME` entry removes
 * NAME and everything below it, except paths created earlier in the same
 * layer; `.wh..wh..opq` empties its directory likewise; an entry replaces
 * whatever is at its path unless both are directories (then only metadata
 * changes); a hardlink shares its target's node (and inode). Every parent
 * directory must exist (fixtures always carry explicit directory entries).
 */
export function expectedTree(layers: ReadonlyArray<{ entries: readonly TarSpec[] }>): Map<string, NodeInfo> {
  const nodes = new Map<string, NodeInfo>();
  const inode = new Map<string, number>();
  let nextInode = 1;
  const removeTree = (p: string, keep: Set<string>, self: boolean): void => {
    for (const q of [...nodes.keys()]) {
      const under = q.startsWith(`${p}/`) || (p === "." && q !== ".");
      if ((under || (self && q === p)) && !keep.has(q)) {
        nodes.delete(q);
        inode.delete(q);
      }
    }
  };
  for (const layer of layers) {
    const upper = new Set<string>();
    const touch = (p: string): void => {
      for (let q = p; ; q = parentOf(q)) {
        upper.add(q);
        if (q === ".") break;
      }
    };
    for (const e of layer.entries) {
      const p = modelPath(e.path);
      const base = p.slice(p.lastIndexOf("/") + 1);
      const dir = parentOf(p);
      if (base === WH_OPAQUE) {
        removeTree(dir, upper, false);
        continue;
      }
      if (base.startsWith(WH_PREFIX)) {
        const target = dir === "." ? base.slice(WH_PREFIX.length) : `${dir}/${base.slice(WH_PREFIX.length)}`;
        removeTree(target, upper, true);
        continue;
      }
      if (p !== "." && dir !== "." && nodes.get(dir)?.type !== "dir") throw new Error(`model: parent of ${p} is not a directory`);
      const old = nodes.get(p);
      if (old && !(old.type === "dir" && e.type === "dir")) removeTree(p, new Set(), true);
      if (e.type === "hardlink") {
        const t = modelPath(e.linkname ?? "");
        const target = nodes.get(t);
        if (!target || target.type === "dir") throw new Error(`model: bad hardlink ${p} -> ${t}`);
        nodes.set(p, target);
        inode.set(p, inode.get(t) ?? 0);
      } else {
        const n = nodeOf(e);
        if (old?.type === "dir" && e.type === "dir") {
          nodes.set(p, n);
        } else {
          nodes.set(p, n);
          inode.set(p, nextInode++);
        }
      }
      touch(p);
    }
  }
  const groups = new Map<number, string[]>();
  for (const [p, n] of nodes) {
    if (n.type === "dir") continue;
    const id = inode.get(p) ?? 0;
    groups.set(id, [...(groups.get(id) ?? []), p]);
  }
  const out = new Map<string, NodeInfo>();
  for (const p of [...nodes.keys()].sort()) {
    const n = { ...(nodes.get(p) as NodeInfo) };
    const g = groups.get(inode.get(p) ?? -1);
    if (n.type !== "dir" && g && g.length > 1) n.hardlinks = [...g].sort();
    out.set(p, n);
  }
  return out;
}
