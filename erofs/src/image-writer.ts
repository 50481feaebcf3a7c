/**
 * Writes an erofs metadata image of a tree of nodes. Inodes, directories,
 * symlinks and xattrs live in the image; a regular file's data does not: its
 * inode holds one chunk index pointing at its bytes on a data device (the
 * layer's uncompressed tar stream, where tar puts every file's data at a
 * 512-byte boundary), as erofs-utils' tar index mode lays it out. The
 * kernel mounts the image file with `-o device=STREAM` for each device.
 *
 * Deterministic: the same tree (and devices and uuid) gives the same bytes.
 * Layout: the superblock at 1024, the device table after it, then the
 * inodes breadth first from the root (nid 0), then directory blocks and
 * long symlinks' blocks.
 */
import { InvalidArgumentError, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, ShoalError } from "@shoal/base";
import {
  BLOCK_BITS, BLOCK_SIZE, CHUNK_FORMAT_BLKBITS_MASK, CHUNK_FORMAT_INDEXES, CHUNK_INDEX_SIZE, DEVICE_SLOT_SIZE, DIRENT_SIZE,
  EROFS_MAGIC, EXTENDED_INODE_SIZE, FEATURE_INCOMPAT_CHUNKED_FILE, FEATURE_INCOMPAT_DEVICE_TABLE, fileType, INODE_EXTENDED,
  LAYOUT_CHUNK_BASED, LAYOUT_FLAT_INLINE, LAYOUT_FLAT_PLAIN, MAX_ROOT_NID, NAME_MAX, SLOT_BITS, SLOT_SIZE, SUPER_OFFSET,
  XATTR_IBODY_HEADER_SIZE, XATTR_PREFIXES,
} from "./format.ts";

/**
 * One inode of the tree to write. The agent's layer tree nodes have this
 * shape. A node reached by several names (a hardlink) is one inode.
 */
export interface ErofsNode {
  /** st_mode with the file type bits. */
  mode: number;
  uid: number;
  gid: number;
  mtimeSec: number;
  mtimeNsec: number;
  /** Regular files: data length in bytes (other types: ignored). */
  size: number;
  /** Character and block devices: the kernel's encoding (`new_encode_dev`). */
  rdev: number;
  /** Regular files: where the data starts on its device, a multiple of 512. */
  dataOffset: number;
  /** Symlink target. */
  linkname?: string;
  xattrs?: ReadonlyMap<string, Uint8Array>;
  /** Directories: entries by name (each 1-255 bytes, no '/' or NUL). */
  children?: ReadonlyMap<string, ErofsNode>;
}

/** What {@link writeErofsImage} writes. */
export interface ErofsImageInit {
  root: ErofsNode;
  /** The data devices in mount order (device ids 1..n), each by its size in bytes; at least one. */
  devices: readonly { size: number }[];
  /** The device id (1..n) holding a regular file's data; default 1. */
  deviceOf?: (node: ErofsNode) => number;
  /** The superblock's uuid, 16 bytes (default zeros). */
  uuid?: Uint8Array;
}

/** A written image. */
export interface ErofsImage {
  bytes: Buffer;
  /** Inodes written. */
  inodes: number;
  /** xattrs erofs cannot name without a long-prefix table (left out), as "path-less name". */
  skippedXattrs: string[];
}

interface Placed {
  node: ErofsNode;
  ino: number;
  nid: number;
  layout: number;
  /** Inline xattr body (header and entries), or empty. */
  xattrBody: Buffer;
  /** Inline symlink target (FLAT_INLINE), or undefined. */
  inline?: Buffer;
  /** Bytes written after the inode (xattrs, inline data or chunk index). */
  recordSize: number;
  nlink: number;
  /** Directories: sorted entries; plain symlinks: their target. */
  dirents?: Array<{ name: Buffer; node: ErofsNode }>;
  plainData?: Buffer;
  /** First block of the node's data in the image (directories, plain symlinks). */
  blkaddr: number;
  blocks: number;
}

const align = (n: number, a: number): number => Math.ceil(n / a) * a;
/** Little-endian 64-bit writes of safe integers, without BigInt (a dirent and an inode each take one or two). */
function writeU64(b: Buffer, v: number, at: number): void {
  const hi = Math.floor(v / 2 ** 32);
  b.writeUInt32LE(v - hi * 2 ** 32, at);
  b.writeUInt32LE(hi, at + 4);
}
function writeI64(b: Buffer, v: number, at: number): void {
  const hi = Math.floor(v / 2 ** 32);
  b.writeUInt32LE(v - hi * 2 ** 32, at);
  b.writeInt32LE(hi, at + 4);
}
const DOT = Buffer.from(".");
const DOTDOT = Buffer.from("..");

function isDir(n: ErofsNode): boolean {
  return (n.mode & S_IFMT) === S_IFDIR;
}

/** The inline xattr body of `xattrs` (empty when none can be stored). */
function xattrBody(xattrs: ReadonlyMap<string, Uint8Array> | undefined, skipped: string[]): Buffer {
  if (!xattrs || xattrs.size === 0) return Buffer.alloc(0);
  const entries: Array<{ index: number; name: Buffer; value: Uint8Array }> = [];
  for (const [full, value] of [...xattrs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const p = XATTR_PREFIXES.find((x) => (x.whole ? full === x.prefix : full.startsWith(x.prefix)));
    const name = Buffer.from(p ? full.slice(p.prefix.length) : "");
    if (!p || (!p.whole && name.length === 0) || name.length > 255 || value.length > 0xffff) {
      skipped.push(full);
      continue;
    }
    entries.push({ index: p.index, name, value });
  }
  if (entries.length === 0) return Buffer.alloc(0);
  const size = XATTR_IBODY_HEADER_SIZE + entries.reduce((s, e) => s + align(4 + e.name.length + e.value.length, 4), 0);
  const out = Buffer.alloc(size);
  let at = XATTR_IBODY_HEADER_SIZE;
  for (const e of entries) {
    out.writeUInt8(e.name.length, at);
    out.writeUInt8(e.index, at + 1);
    out.writeUInt16LE(e.value.length, at + 2);
    e.name.copy(out, at + 4);
    Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).copy(out, at + 4 + e.name.length);
    at += align(4 + e.name.length + e.value.length, 4);
  }
  return out;
}

/** Directory blocks of `entries` (sorted): each block its dirents, then their names, zero padded. */
function dirBlocks(entries: Array<{ name: Buffer; nid: number; type: number }>): Buffer[] {
  const blocks: Buffer[] = [];
  let i = 0;
  while (i < entries.length) {
    let n = 0;
    let names = 0;
    while (i + n < entries.length && DIRENT_SIZE * (n + 1) + names + entries[i + n]!.name.length <= BLOCK_SIZE) {
      names += entries[i + n]!.name.length;
      n++;
    }
    const block = Buffer.alloc(BLOCK_SIZE);
    let nameoff = DIRENT_SIZE * n;
    for (let k = 0; k < n; k++) {
      const e = entries[i + k]!;
      writeU64(block, e.nid, k * DIRENT_SIZE);
      block.writeUInt16LE(nameoff, k * DIRENT_SIZE + 8);
      block.writeUInt8(e.type, k * DIRENT_SIZE + 10);
      e.name.copy(block, nameoff);
      nameoff += e.name.length;
    }
    blocks.push(block);
    i += n;
  }
  return blocks;
}

/** Chunk bits (above the block size) so that a file of `size` bytes is one chunk. */
function chunkBits(size: number): number {
  const blocks = Math.ceil(size / BLOCK_SIZE);
  let bits = 0;
  while (2 ** bits < blocks) bits++;
  if (bits > CHUNK_FORMAT_BLKBITS_MASK) throw new ShoalError("SHOAL_ERR_UNSUPPORTED", `a file of ${size} bytes is larger than an erofs chunk holds`);
  return bits;
}

/**
 * The erofs image of the tree under `init.root`. Throws
 * `InvalidArgumentError` for a name erofs cannot hold or a file whose data
 * is not 512-aligned, and `ShoalError` (`SHOAL_ERR_UNSUPPORTED`) for sizes
 * past the format's fields.
 */
export function writeErofsImage(init: ErofsImageInit): ErofsImage {
  const { root, devices } = init;
  if (!isDir(root)) throw new InvalidArgumentError("the root of an erofs image is a directory");
  if (devices.length < 1 || devices.length > 0xffff) throw new InvalidArgumentError(`an image needs 1..65535 data devices, not ${devices.length}`);
  const deviceOf = init.deviceOf ?? (() => 1);
  const skipped: string[] = [];

  // breadth first from the root; a node reached twice (a hardlink) is placed once
  const placed = new Map<ErofsNode, Placed>();
  const order: Placed[] = [];
  const parents = new Map<ErofsNode, ErofsNode>([[root, root]]);
  const visit = (node: ErofsNode): void => {
    const had = placed.get(node);
    if (had) {
      had.nlink++;
      return;
    }
    const p: Placed = { node, ino: order.length + 1, nid: 0, layout: LAYOUT_FLAT_PLAIN, xattrBody: xattrBody(node.xattrs, skipped), recordSize: 0, nlink: 1, blkaddr: 0, blocks: 0 };
    placed.set(node, p);
    order.push(p);
  };
  visit(root);
  for (let q = 0; q < order.length; q++) {
    const p = order[q]!;
    if (!isDir(p.node)) continue;
    const kids = [...(p.node.children ?? new Map<string, ErofsNode>())].map(([name, node]) => ({ name: Buffer.from(name), node }));
    for (const k of kids) {
      if (k.name.length === 0 || k.name.length > NAME_MAX || k.name.includes(0x2f) || k.name.includes(0)) {
        throw new InvalidArgumentError(`erofs cannot hold the name ${JSON.stringify(k.name.toString())}`);
      }
    }
    p.nlink = 2;
    for (const k of kids) {
      if (isDir(k.node)) {
        if (placed.has(k.node)) throw new InvalidArgumentError("a directory is reachable by two names");
        parents.set(k.node, p.node);
        p.nlink++;
        visit(k.node);
        placed.get(k.node)!.nlink = 2;
      } else visit(k.node);
    }
    kids.push({ name: DOT, node: p.node }, { name: DOTDOT, node: parents.get(p.node)! });
    kids.sort((a, b) => Buffer.compare(a.name, b.name));
    p.dirents = kids;
  }

  // the inode area: each record (inode, xattrs, inline data or chunk index) at a 32-byte slot,
  // never crossing a block when it fits in one (the kernel reads an inline tail within one block)
  let pos = 0;
  for (const p of order) {
    const n = p.node;
    const base = EXTENDED_INODE_SIZE + p.xattrBody.length;
    const type = n.mode & S_IFMT;
    if (type === S_IFREG && n.size > 0) {
      if (n.dataOffset % BLOCK_SIZE !== 0) throw new InvalidArgumentError(`file data at ${n.dataOffset} is not block-aligned`);
      p.layout = LAYOUT_CHUNK_BASED;
      p.recordSize = align(base, CHUNK_INDEX_SIZE) + CHUNK_INDEX_SIZE;
    } else if (type === S_IFLNK) {
      const target = Buffer.from(n.linkname ?? "");
      if (base + target.length <= BLOCK_SIZE) {
        p.layout = LAYOUT_FLAT_INLINE;
        p.inline = target;
        p.recordSize = base + target.length;
      } else {
        p.plainData = target;
        p.recordSize = base;
      }
    } else p.recordSize = base;
    if (p.recordSize <= BLOCK_SIZE ? (pos % BLOCK_SIZE) + p.recordSize > BLOCK_SIZE : pos % BLOCK_SIZE !== 0) pos = align(pos, BLOCK_SIZE);
    p.nid = pos >> SLOT_BITS;
    pos = align(pos + p.recordSize, SLOT_SIZE);
  }
  if (order[0]!.nid > MAX_ROOT_NID) throw new ShoalError("SHOAL_ERR_UNSUPPORTED", "the root inode is out of the superblock's reach");

  const slotOff = SUPER_OFFSET / DEVICE_SLOT_SIZE + 1; // the slot after the superblock's
  const metaBlk = Math.ceil((slotOff + devices.length) * DEVICE_SLOT_SIZE / BLOCK_SIZE);
  let nextBlk = metaBlk + Math.ceil(pos / BLOCK_SIZE);

  // directory blocks (and long symlinks) after the inodes
  const dirData = new Map<Placed, Buffer[]>();
  for (const p of order) {
    if (p.dirents) {
      const blocks = dirBlocks(p.dirents.map((d) => ({ name: d.name, nid: placed.get(d.node)!.nid, type: fileType(d.node.mode) })));
      dirData.set(p, blocks);
      p.blocks = blocks.length;
    } else if (p.plainData) p.blocks = Math.ceil(p.plainData.length / BLOCK_SIZE);
    if (p.blocks > 0) {
      p.blkaddr = nextBlk;
      nextBlk += p.blocks;
    }
  }
  if (nextBlk > 0xffffffff) throw new ShoalError("SHOAL_ERR_UNSUPPORTED", "the image is larger than erofs' block addresses reach");

  const out = Buffer.alloc(nextBlk * BLOCK_SIZE);
  writeSuper(out, { rootNid: order[0]!.nid, inodes: order.length, blocks: nextBlk, metaBlk, devices: devices.length, slotOff, uuid: init.uuid });
  devices.forEach((d, i) => {
    const at = (slotOff + i) * DEVICE_SLOT_SIZE;
    out.writeUInt32LE(Math.ceil(d.size / BLOCK_SIZE), at + 64);
  });
  const metaStart = metaBlk * BLOCK_SIZE;
  for (const p of order) {
    const at = metaStart + p.nid * SLOT_SIZE;
    writeInode(out, at, p, deviceOf, devices.length);
    p.xattrBody.copy(out, at + EXTENDED_INODE_SIZE);
    if (p.inline) p.inline.copy(out, at + EXTENDED_INODE_SIZE + p.xattrBody.length);
    const blocks = dirData.get(p);
    if (blocks) blocks.forEach((b, i) => b.copy(out, (p.blkaddr + i) * BLOCK_SIZE));
    if (p.plainData) p.plainData.copy(out, p.blkaddr * BLOCK_SIZE);
  }
  return { bytes: out, inodes: order.length, skippedXattrs: skipped };
}

function writeSuper(out: Buffer, s: { rootNid: number; inodes: number; blocks: number; metaBlk: number; devices: number; slotOff: number; uuid?: Uint8Array }): void {
  const at = SUPER_OFFSET;
  out.writeUInt32LE(EROFS_MAGIC, at);
  out.writeUInt8(BLOCK_BITS, at + 12);
  out.writeUInt16LE(s.rootNid, at + 14);
  writeU64(out, s.inodes, at + 16);
  out.writeUInt32LE(s.blocks, at + 36);
  out.writeUInt32LE(s.metaBlk, at + 40);
  if (s.uuid) Buffer.from(s.uuid.buffer, s.uuid.byteOffset, Math.min(16, s.uuid.byteLength)).copy(out, at + 48);
  out.writeUInt32LE(FEATURE_INCOMPAT_CHUNKED_FILE | FEATURE_INCOMPAT_DEVICE_TABLE, at + 80);
  out.writeUInt16LE(s.devices, at + 86);
  out.writeUInt16LE(s.slotOff, at + 88);
}

function writeInode(out: Buffer, at: number, p: Placed, deviceOf: (n: ErofsNode) => number, devices: number): void {
  const n = p.node;
  const type = n.mode & S_IFMT;
  out.writeUInt16LE(INODE_EXTENDED | (p.layout << 1), at);
  out.writeUInt16LE(p.xattrBody.length === 0 ? 0 : (p.xattrBody.length - XATTR_IBODY_HEADER_SIZE) / 4 + 1, at + 2);
  out.writeUInt16LE(n.mode & 0xffff, at + 4);
  let size = 0;
  if (type === S_IFREG) size = n.size;
  else if (type === S_IFLNK) size = Buffer.byteLength(n.linkname ?? "");
  else if (type === S_IFDIR) size = p.blocks * BLOCK_SIZE;
  writeU64(out, size, at + 8);
  if (p.layout === LAYOUT_CHUNK_BASED) {
    out.writeUInt16LE(CHUNK_FORMAT_INDEXES | chunkBits(n.size), at + 16);
    const dev = deviceOf(n);
    if (!Number.isInteger(dev) || dev < 1 || dev > devices) throw new InvalidArgumentError(`device ${dev} of a file is not one of the image's ${devices}`);
    const idx = at + align(EXTENDED_INODE_SIZE + p.xattrBody.length, CHUNK_INDEX_SIZE);
    out.writeUInt16LE(dev, idx + 2);
    const blk = n.dataOffset / BLOCK_SIZE;
    if (blk > 0xffffffff) throw new ShoalError("SHOAL_ERR_UNSUPPORTED", "file data lies past erofs' block addresses");
    out.writeUInt32LE(blk, idx + 4);
  } else if (type === S_IFCHR || type === S_IFBLK) {
    out.writeUInt32LE(n.rdev >>> 0, at + 16);
  } else if (type === S_IFDIR || p.plainData) {
    out.writeUInt32LE(p.blkaddr, at + 16);
  } else if (type !== S_IFREG && type !== S_IFLNK && type !== S_IFIFO && type !== S_IFSOCK) {
    throw new InvalidArgumentError(`mode ${n.mode.toString(8)} has no file type erofs holds`);
  }
  out.writeUInt32LE(p.ino, at + 20);
  out.writeUInt32LE(n.uid >>> 0, at + 24);
  out.writeUInt32LE(n.gid >>> 0, at + 28);
  writeI64(out, n.mtimeSec, at + 32);
  out.writeUInt32LE(n.mtimeNsec >>> 0, at + 40);
  out.writeUInt32LE(p.nlink, at + 44);
}
