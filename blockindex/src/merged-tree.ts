import { ShoalError } from "@shoal/base";
import { NotFoundError } from "./errors.ts";
import type { LayerIndex } from "./layer-index.ts";
import { OPAQUE_MARKER, WHITEOUT_PREFIX, type TarEntry } from "./tar-entry.ts";
import { baseName, normalizeTarPath, parentPath } from "./tar-path.ts";

/** A file's identity in the merged view; hardlinked names share one inode. */
export interface MergedInode {
  /** Position in the layer list (0 = bottom) of the layer holding `entry`. */
  layer: number;
  /** Metadata, and for regular files where the data is. Never a hardlink entry. */
  entry: TarEntry;
}

/** A name in the merged tree. */
export interface MergedNode {
  path: string;
  inode: MergedInode;
  /** Present for directories: children by name. */
  children?: Map<string, MergedNode>;
}

const MAX_SYMLINKS = 40;

function implicitDir(path: string, layer: number): MergedInode {
  return { layer, entry: { path, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeSec: 0, mtimeNsec: 0, size: 0, dataOffset: 0 } };
}

/**
 * The merged root filesystem of an image: layers applied bottom to top with
 * OCI whiteout semantics, the view `umoci unpack` produces. In each layer,
 * whiteouts (`.wh.NAME`) and opaque markers (`.wh..wh..opq`) apply to lower
 * layers only; then entries apply in tar order: a directory over a directory
 * merges (the upper metadata wins), anything else replaces what was there
 * (a whole subtree included); a hardlink names the inode its target has at
 * that moment.
 */
export class MergedTree {
  readonly root: MergedNode;

  private constructor(root: MergedNode) {
    this.root = root;
  }

  /** Stack `layers` (index 0 = bottom). */
  static build(layers: readonly LayerIndex[]): MergedTree {
    const tree = new MergedTree({ path: "", inode: implicitDir("", 0), children: new Map() });
    layers.forEach((layer, k) => tree.apply(layer, k));
    return tree;
  }

  private apply(layer: LayerIndex, k: number): void {
    for (const e of layer.entries) {
      const base = baseName(e.path);
      if (!base.startsWith(WHITEOUT_PREFIX)) continue;
      const dir = this.lookup(parentPath(e.path));
      if (!dir?.children) continue;
      if (base === OPAQUE_MARKER) dir.children.clear();
      else dir.children.delete(base.slice(WHITEOUT_PREFIX.length));
    }
    for (const e of layer.entries) {
      const base = baseName(e.path);
      if (base.startsWith(WHITEOUT_PREFIX)) continue;
      let inode: MergedInode = { layer: k, entry: e };
      if (e.type === "hardlink") {
        const target = this.lookup(e.linkname ?? "");
        if (!target || target.children) continue; // umoci fails on such links; shoal leaves the name out
        inode = target.inode;
      }
      if (e.path === "") {
        if (e.type === "dir") this.root.inode = inode;
        continue;
      }
      const parent = this.ensureDir(parentPath(e.path), k);
      const existing = parent.children!.get(base);
      if (existing?.children && e.type === "dir") {
        existing.inode = inode;
      } else {
        parent.children!.set(base, { path: e.path, inode, ...(e.type === "dir" ? { children: new Map() } : {}) });
      }
    }
  }

  private ensureDir(path: string, layer: number): MergedNode {
    let node = this.root;
    if (path === "") return node;
    let sofar = "";
    for (const part of path.split("/")) {
      sofar = sofar ? `${sofar}/${part}` : part;
      let child = node.children!.get(part);
      if (!child?.children) {
        child = { path: sofar, inode: implicitDir(sofar, layer), children: new Map() };
        node.children!.set(part, child);
      }
      node = child;
    }
    return node;
  }

  /** The node at normalised `path` without following symlinks, or undefined. */
  lookup(path: string): MergedNode | undefined {
    let node: MergedNode | undefined = this.root;
    if (path === "") return node;
    for (const part of path.split("/")) {
      node = node?.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  /**
   * Resolve a user path (absolute or relative to the image root, `..`
   * allowed but never above the root) following symlinks in every component
   * but the last, and in the last too when `follow` is true. Throws
   * `NotFoundError` for a missing (or whited-out) path and `ShoalError`
   * (`SHOAL_ERR_SYMLINK_LOOP`) after 40 symlinks.
   */
  resolve(userPath: string, opts: { follow?: boolean } = {}): MergedNode {
    let hops = 0;
    const walk = (parts: string[], follow: boolean): MergedNode => {
      const stack: MergedNode[] = [this.root];
      for (let i = 0; i < parts.length; i++) {
        const part = parts[i]!;
        if (part === "" || part === ".") continue;
        if (part === "..") {
          if (stack.length > 1) stack.pop();
          continue;
        }
        const dir = stack[stack.length - 1]!;
        if (!dir.children) throw new NotFoundError(userPath, "not a directory");
        const child = dir.children.get(part);
        if (!child) throw new NotFoundError(userPath);
        const last = i === parts.length - 1;
        if (child.inode.entry.type === "symlink" && (!last || follow)) {
          if (++hops > MAX_SYMLINKS) throw new ShoalError("SHOAL_ERR_SYMLINK_LOOP", `${userPath}: too many levels of symbolic links`);
          const target = child.inode.entry.linkname ?? "";
          const base = target.startsWith("/") ? [] : stack.slice(1).map((n) => baseName(n.path));
          const resolved = walk([...base, ...target.split("/"), ...parts.slice(i + 1)], follow);
          return resolved;
        }
        stack.push(child);
      }
      return stack[stack.length - 1]!;
    };
    return walk(userPath.split("/"), opts.follow ?? false);
  }

  /** Every node, parents before children, children in name order. */
  *walk(from: MergedNode = this.root): Generator<MergedNode> {
    yield from;
    if (!from.children) return;
    for (const name of [...from.children.keys()].sort()) yield* this.walk(from.children.get(name)!);
  }
}

/** Normalise a path typed by a user (`/etc/passwd`, `etc/passwd`) for `MergedTree.lookup`. */
export function normalizeUserPath(path: string): string {
  return normalizeTarPath(path.replace(/^\/+/, ""), (msg) => new NotFoundError(path, msg));
}
