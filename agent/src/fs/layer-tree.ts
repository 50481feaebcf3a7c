/**
 * The per-layer tree the filesystem serves: one layer's tar entries turned
 * into an overlayfs lower directory (whiteouts as 0/0 character devices,
 * opaque directories marked with `trusted.overlay.opaque`, hardlinks sharing
 * one node). Built once per layer; immutable afterwards.
 */
import {
  baseName, joinPath, OPAQUE_MARKER, parentPath, WHITEOUT_PREFIX, type LayerIndex, type TarEntry,
} from "@shoal/blockindex";
import { encodeDev, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG } from "./fuse-abi.ts";
import type { LayerData, LayerSnapshot, LowerFile } from "./layer-data.ts";

/** The xattr overlayfs reads to tell an opaque directory. */
export const OPAQUE_XATTR = "trusted.overlay.opaque";
/** xattr names a layer may not set: overlayfs trusts them on its lower directories. */
const RESERVED_XATTR_PREFIX = "trusted.overlay.";
const AUFS_META_PREFIX = ".wh..wh.";
const OPAQUE_VALUE = Buffer.from("y");

/** One inode of a layer tree. Hardlinked names share one node. */
export interface FsNode {
  /** Inode number, also the FUSE node id; unique in the filesystem. */
  ino: number;
  /** st_mode including the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** Kernel-encoded device number (character/block devices; 0 for whiteouts). */
  rdev: number;
  nlink: number;
  /** The layer whose tree owns this node (a cross-layer hardlink may show another layer's node). */
  layer: string;
  /** First path of the node in its layer, for messages. */
  path: string;
  /** Regular files: the bytes are `data` at `[dataOffset, dataOffset + size)` of the uncompressed tar. */
  dataOffset: number;
  data?: LayerData;
  /** The tar entry the node was made from (whiteouts and implicit directories: undefined). */
  entry?: TarEntry;
  linkname?: string;
  xattrs?: Map<string, Buffer>;
  /** Directories: entries by name. */
  children?: Map<string, FsNode>;
  /** Directories: the listing, built on first readdir. */
  listing?: { names: Buffer[]; nodes: FsNode[] };
}

/** Allocates inode numbers (never reused). */
export type InoAllocator = () => number;

/** Finds the node of another layer of the same filesystem, for inode sharing. */
export type NodeFinder = (layerId: string, path: string) => FsNode | undefined;

function typeBits(type: TarEntry["type"]): number {
  switch (type) {
    case "file": return S_IFREG;
    case "dir": return S_IFDIR;
    case "symlink": return S_IFLNK;
    case "chardev": return S_IFCHR;
    case "blockdev": return S_IFBLK;
    case "fifo": return S_IFIFO;
    case "hardlink": return S_IFREG;
  }
}

function xattrsOf(e: TarEntry): Map<string, Buffer> | undefined {
  if (!e.xattrs || e.xattrs.size === 0) return undefined;
  const out = new Map<string, Buffer>();
  // An empty PAX value deletes a record (Go's archive/tar drops it, so umoci
  // never sets it); trusted.overlay.* would steer overlayfs.
  for (const [k, v] of e.xattrs) {
    if (v.length > 0 && !k.startsWith(RESERVED_XATTR_PREFIX)) out.set(k, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  return out.size ? out : undefined;
}

/** A layer presented as an overlayfs lower directory. */
export class LayerTree {
  readonly id: string;
  readonly root: FsNode;
  /** Every node this layer owns (not nodes shared from lower layers). */
  readonly nodes: FsNode[] = [];
  /** Hardlinks left out because their target is missing (in this layer and below) or is a directory. */
  readonly brokenLinks: Array<{ path: string; target: string }> = [];
  /** Bytes of regular file data this layer owns. */
  fileBytes = 0;
  /**
   * The layer's whole uncompressed tar stream as one read-only file (block
   * mode's data device): its node id comes after every entry's, so adding
   * it changed none of theirs.
   */
  readonly stream: FsNode;
  /** Files of this layer with data, by data offset (built on first `filesIn`). */
  private byOffset: FsNode[] | undefined;

  private readonly alloc: InoAllocator;
  private readonly data: LayerData;
  private readonly implicit = new Set<FsNode>();

  private constructor(id: string, data: LayerData, alloc: InoAllocator, streamSize: number) {
    this.id = id;
    this.data = data;
    this.alloc = alloc;
    this.root = this.dirNode("");
    this.stream = { ino: 0, mode: S_IFREG | 0o444, uid: 0, gid: 0, size: streamSize, mtimeSec: 0, mtimeNsec: 0, rdev: 0, nlink: 1, layer: id, path: "", dataOffset: 0, data };
  }

  /**
   * Build the tree of `snapshot`. `alloc` hands out inode numbers;
   * `findNode` lets a hardlink into a lower layer of the same filesystem
   * share that layer's node. Linear in the number of entries.
   */
  static build(snapshot: LayerSnapshot, alloc: InoAllocator, findNode: NodeFinder = () => undefined): LayerTree {
    const tree = new LayerTree(snapshot.id, snapshot.data, alloc, snapshot.index.uncompressedSize);
    tree.fill(snapshot.index, snapshot.resolveLower, findNode);
    return tree;
  }

  /**
   * The files of this layer whose data overlaps stream bytes
   * `[offset, offset + length)`, in stream order (at most `max`). A read
   * of the stream is mapped back to its files with this, so whole-file
   * fetch and startup recording work in block mode as they do per file.
   */
  filesIn(offset: number, length: number, max = 64): FsNode[] {
    const files = (this.byOffset ??= this.nodes.filter((n) => n.data === this.data && n.size > 0 && !n.children && n !== this.stream).sort((a, b) => a.dataOffset - b.dataOffset));
    // the first file ending after `offset`
    let lo = 0;
    let hi = files.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (files[mid]!.dataOffset + files[mid]!.size <= offset) lo = mid + 1;
      else hi = mid;
    }
    const out: FsNode[] = [];
    for (let i = lo; i < files.length && out.length < max && files[i]!.dataOffset < offset + length; i++) out.push(files[i]!);
    return out;
  }

  /** The node at normalised `path` ("" = layer root), without following symlinks. */
  lookup(path: string): FsNode | undefined {
    if (path === "") return this.root;
    let node: FsNode | undefined = this.root;
    for (const part of path.split("/")) {
      node = node.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  private newNode(path: string, mode: number, e?: TarEntry): FsNode {
    const node: FsNode = {
      ino: this.alloc(), mode, uid: e?.uid ?? 0, gid: e?.gid ?? 0, size: 0, mtimeSec: e?.mtimeSec ?? 0, mtimeNsec: e?.mtimeNsec ?? 0,
      rdev: 0, nlink: 0, layer: this.id, path, dataOffset: 0, entry: e,
    };
    this.nodes.push(node);
    return node;
  }

  private dirNode(path: string): FsNode {
    const node = this.newNode(path, S_IFDIR | 0o755);
    node.size = 4096;
    node.children = new Map();
    this.implicit.add(node);
    return node;
  }

  /** A node for entry `e` (never a hardlink) whose file bytes are in `data`. */
  private entryNode(path: string, e: TarEntry, data: LayerData): FsNode {
    const node = this.newNode(path, typeBits(e.type) | (e.mode & 0o7777), e);
    node.xattrs = xattrsOf(e);
    switch (e.type) {
      case "file":
        node.size = e.size;
        node.dataOffset = e.dataOffset;
        node.data = data;
        if (data === this.data) this.fileBytes += e.size;
        break;
      case "dir":
        node.size = 4096;
        node.children = new Map();
        break;
      case "symlink":
        node.mode = S_IFLNK | 0o777; // Linux symlinks have no permissions of their own
        node.linkname = e.linkname ?? "";
        node.size = Buffer.byteLength(node.linkname);
        break;
      case "chardev":
      case "blockdev":
        node.rdev = encodeDev(e.devmajor ?? 0, e.devminor ?? 0);
        break;
      default:
        break;
    }
    return node;
  }

  /** Directory at `path`, creating implicit ones and replacing non-directories on the way. */
  private ensureDir(path: string): FsNode {
    let node = this.root;
    if (path === "") return node;
    let sofar = "";
    for (const part of path.split("/")) {
      sofar = sofar ? `${sofar}/${part}` : part;
      let child = node.children!.get(part);
      if (!child?.children || child.layer !== this.id) {
        child = this.dirNode(sofar);
        node.children!.set(part, child);
      }
      node = child;
    }
    return node;
  }

  private fill(index: LayerIndex, resolveLower: LayerSnapshot["resolveLower"], findNode: NodeFinder): void {
    const whiteouts: TarEntry[] = [];
    const opaque: string[] = [];
    for (const e of index.entries) {
      const base = baseName(e.path);
      if (e.path === "") {
        if (e.type === "dir") this.setDirMeta(this.root, e);
        continue;
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        if (base === OPAQUE_MARKER) opaque.push(parentPath(e.path));
        else if (!base.startsWith(AUFS_META_PREFIX)) whiteouts.push(e);
        continue;
      }
      const parent = this.ensureDir(parentPath(e.path));
      const existing = parent.children!.get(base);
      if (e.type === "hardlink") {
        const node = this.hardlinkNode(e, resolveLower, findNode);
        if (node) parent.children!.set(base, node);
        else {
          parent.children!.delete(base);
          this.brokenLinks.push({ path: e.path, target: e.linkname ?? "" });
        }
      } else if (e.type === "dir" && existing?.children && existing.layer === this.id) {
        this.setDirMeta(existing, e);
      } else {
        parent.children!.set(base, this.entryNode(e.path, e, this.data));
      }
    }
    // Whiteouts hide lower layers only: a name this layer also has stays, and
    // a directory re-created here becomes opaque instead.
    for (const e of whiteouts) {
      const parent = this.ensureDir(parentPath(e.path));
      const name = baseName(e.path).slice(WHITEOUT_PREFIX.length);
      const existing = parent.children!.get(name);
      if (existing?.children) opaque.push(joinPath(parentPath(e.path), name));
      else if (!existing) {
        const wh = this.newNode(e.path, S_IFCHR, e);
        wh.uid = 0;
        wh.gid = 0;
        parent.children!.set(name, wh);
      }
    }
    for (const path of opaque) {
      const dir = this.ensureDir(path);
      (dir.xattrs ??= new Map()).set(OPAQUE_XATTR, OPAQUE_VALUE);
    }
    for (const dir of this.implicit) this.inheritLowerDir(dir, resolveLower);
    this.countLinks(this.root);
    this.stream.ino = this.alloc();
    this.nodes.push(this.stream);
  }

  private setDirMeta(dir: FsNode, e: TarEntry): void {
    dir.mode = S_IFDIR | (e.mode & 0o7777);
    dir.uid = e.uid;
    dir.gid = e.gid;
    dir.mtimeSec = e.mtimeSec;
    dir.mtimeNsec = e.mtimeNsec;
    dir.entry = e;
    const opaque = dir.xattrs?.get(OPAQUE_XATTR);
    dir.xattrs = xattrsOf(e);
    if (opaque) (dir.xattrs ??= new Map()).set(OPAQUE_XATTR, opaque);
    this.implicit.delete(dir);
  }

  /**
   * A directory this layer has no entry for takes the metadata the lower
   * layers give it (overlayfs shows the topmost layer's), else stays 0755 root.
   */
  private inheritLowerDir(dir: FsNode, resolveLower: LayerSnapshot["resolveLower"]): void {
    const lower = resolveLower?.(dir.path)?.entry;
    if (lower?.type !== "dir") return;
    const opaque = dir.xattrs?.get(OPAQUE_XATTR);
    this.setDirMeta(dir, lower);
    dir.entry = undefined;
    if (opaque) (dir.xattrs ??= new Map()).set(OPAQUE_XATTR, opaque);
  }

  /**
   * The node a hardlink entry names: the target's node when this layer has
   * it, else the lower layers' file (shared when that layer is in this
   * filesystem, a copy otherwise); undefined for a missing or directory target.
   */
  private hardlinkNode(e: TarEntry, resolveLower: LayerSnapshot["resolveLower"], findNode: NodeFinder): FsNode | undefined {
    const target = this.lookup(e.linkname ?? "");
    if (target) return target.children ? undefined : target;
    const lower: LowerFile | undefined = resolveLower?.(e.linkname ?? "");
    if (!lower || lower.entry.type === "dir" || lower.entry.type === "hardlink") return undefined;
    if (lower.layerId !== undefined) {
      const shared = findNode(lower.layerId, lower.entry.path);
      if (shared?.entry === lower.entry) return shared;
    }
    return this.entryNode(e.path, lower.entry, lower.data);
  }

  /** nlink: names per node for files, 2 + subdirectories for directories. */
  private countLinks(root: FsNode): void {
    const stack = [root];
    while (stack.length) {
      const dir = stack.pop()!;
      dir.nlink = 2;
      for (const child of dir.children!.values()) {
        if (child.children) {
          dir.nlink++;
          stack.push(child);
        } else if (child.layer === this.id) {
          child.nlink++;
        }
      }
    }
  }
}
