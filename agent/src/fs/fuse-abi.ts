/**
 * The parts of the Linux FUSE kernel ABI (include/uapi/linux/fuse.h) the
 * layer filesystem speaks: opcodes, flags, errno values and encoders for the
 * reply structs. All integers are little-endian (x86-64 and arm64 hosts).
 */

/** Protocol version shoal implements; the kernel's minor is used when lower. */
export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 31;
/** Oldest kernel minor accepted (max_pages, cache_symlinks, 64-byte init_out). */
export const FUSE_MIN_MINOR_VERSION = 28;

/** Request opcodes, by name. */
export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10,
  RMDIR: 11, RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20,
  SETXATTR: 21, GETXATTR: 22, LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28,
  RELEASEDIR: 29, FSYNCDIR: 30, GETLK: 31, SETLK: 32, SETLKW: 33, ACCESS: 34, CREATE: 35, INTERRUPT: 36,
  BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40, NOTIFY_REPLY: 41, BATCH_FORGET: 42, FALLOCATE: 43,
  READDIRPLUS: 44, RENAME2: 45, LSEEK: 46, COPY_FILE_RANGE: 47, SETUPMAPPING: 48, REMOVEMAPPING: 49,
  SYNCFS: 50, TMPFILE: 51, STATX: 52, COPY_FILE_RANGE_64: 53,
} as const;

const OP_NAMES = new Map<number, string>(Object.entries(Op).map(([k, v]) => [v, k.toLowerCase()]));

/** Lower-case name of opcode `op` ("lookup", "read", ...), or `op<N>` for unknown ones. */
export function opName(op: number): string {
  return OP_NAMES.get(op) ?? `op${op}`;
}

/** Opcodes that would modify the filesystem; all answered with EROFS. */
export const WRITE_OPS: ReadonlySet<number> = new Set([
  Op.SETATTR, Op.SYMLINK, Op.MKNOD, Op.MKDIR, Op.UNLINK, Op.RMDIR, Op.RENAME, Op.LINK, Op.WRITE, Op.SETXATTR,
  Op.REMOVEXATTR, Op.CREATE, Op.FALLOCATE, Op.RENAME2, Op.COPY_FILE_RANGE, Op.TMPFILE, Op.COPY_FILE_RANGE_64,
]);

/** FUSE_INIT flags (fuse_init_in.flags / fuse_init_out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  PARALLEL_DIROPS: 1 << 18,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  /** Zero-message opens: an OPEN answered ENOSYS counts as success, and the kernel sends no OPEN or RELEASE again. */
  NO_OPEN_SUPPORT: 1 << 17,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
} as const;

/** fuse_open_out.open_flags. */
export const FOPEN_KEEP_CACHE = 1 << 1;
export const FOPEN_CACHE_DIR = 1 << 3;

/** Notification codes (written with unique 0 and the code in the error field). */
export const NOTIFY_INVAL_INODE = 2;
export const NOTIFY_INVAL_ENTRY = 3;

/** Linux errno values used by the filesystem. */
export const Errno = {
  EPERM: 1, ENOENT: 2, EINTR: 4, EIO: 5, EBADF: 9, EAGAIN: 11, EACCES: 13, ENOTDIR: 20, EISDIR: 21,
  EINVAL: 22, EROFS: 30, ERANGE: 34, ENOSYS: 38, ENODATA: 61, EPROTO: 71, ESTALE: 116,
} as const;

/** File type bits of st_mode. */
export { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from "@shoal/base";

/** Size of fuse_in_header / fuse_out_header. */
export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
/** Size of fuse_attr, fuse_entry_out, fuse_attr_out. */
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;

/** A decoded fuse_in_header plus the request body (the bytes after the header). */
export interface FuseRequest {
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
  body: Buffer;
}

/** Decode one request as read from /dev/fuse; undefined when it is too short to be one. */
export function decodeRequest(buf: Buffer): FuseRequest | undefined {
  if (buf.length < IN_HEADER_SIZE) return undefined;
  const len = Math.min(buf.readUInt32LE(0), buf.length);
  return {
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: buf.readUInt32LE(16) + buf.readUInt32LE(20) * 0x1_0000_0000,
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
    body: buf.subarray(IN_HEADER_SIZE, len),
  };
}

/** A NUL-terminated string at the start of `body` (a name argument). */
export function cString(body: Buffer, start = 0): string {
  const end = body.indexOf(0, start);
  return body.toString("utf8", start, end < 0 ? body.length : end);
}

/** fuse_out_header for a reply of `payloadLength` bytes with error `error` (0 or a negative errno). */
export function outHeader(unique: bigint, error: number, payloadLength: number): Buffer {
  const h = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  h.writeUInt32LE(OUT_HEADER_SIZE + payloadLength, 0);
  h.writeInt32LE(error, 4);
  h.writeBigUInt64LE(unique, 8);
  return h;
}

/** What a fuse_attr needs; times are seconds (may be negative) plus nanoseconds. */
export interface Attr {
  ino: number;
  size: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  mtimeSec: number;
  mtimeNsec: number;
}

/** Write `a` as a fuse_attr at `off` of `buf` (atime and ctime equal mtime). */
export function writeAttr(buf: Buffer, off: number, a: Attr): void {
  buf.writeBigUInt64LE(BigInt(a.ino), off);
  buf.writeBigUInt64LE(BigInt(a.size), off + 8);
  buf.writeBigUInt64LE(BigInt(Math.ceil(a.size / 512)), off + 16);
  const t = BigInt(a.mtimeSec);
  buf.writeBigInt64LE(t, off + 24);
  buf.writeBigInt64LE(t, off + 32);
  buf.writeBigInt64LE(t, off + 40);
  buf.writeUInt32LE(a.mtimeNsec, off + 48);
  buf.writeUInt32LE(a.mtimeNsec, off + 52);
  buf.writeUInt32LE(a.mtimeNsec, off + 56);
  buf.writeUInt32LE(a.mode >>> 0, off + 60);
  buf.writeUInt32LE(a.nlink >>> 0, off + 64);
  buf.writeUInt32LE(a.uid >>> 0, off + 68);
  buf.writeUInt32LE(a.gid >>> 0, off + 72);
  buf.writeUInt32LE(a.rdev >>> 0, off + 76);
  buf.writeUInt32LE(4096, off + 80);
  buf.writeUInt32LE(0, off + 84);
}

/** A timeout in seconds as (whole seconds, nanoseconds). */
function splitSeconds(sec: number): [bigint, number] {
  const whole = Math.floor(sec);
  return [BigInt(whole), Math.round((sec - whole) * 1e9)];
}

/**
 * fuse_entry_out into `buf` at `off`. `attr` undefined means a negative entry
 * (nodeid 0), which the kernel caches for `entryTimeout` seconds.
 */
export function writeEntryOut(buf: Buffer, off: number, attr: Attr | undefined, entryTimeout: number, attrTimeout: number): void {
  const [es, ens] = splitSeconds(entryTimeout);
  const [as, ans] = splitSeconds(attrTimeout);
  buf.writeBigUInt64LE(BigInt(attr?.ino ?? 0), off);
  buf.writeBigUInt64LE(0n, off + 8); // generation
  buf.writeBigUInt64LE(es, off + 16);
  buf.writeBigUInt64LE(as, off + 24);
  buf.writeUInt32LE(ens, off + 32);
  buf.writeUInt32LE(ans, off + 36);
  if (attr) writeAttr(buf, off + 40, attr);
  else buf.fill(0, off + 40, off + ENTRY_OUT_SIZE);
}

/** fuse_entry_out as a new buffer. */
export function entryOut(attr: Attr | undefined, entryTimeout: number, attrTimeout: number): Buffer {
  const b = Buffer.allocUnsafe(ENTRY_OUT_SIZE);
  writeEntryOut(b, 0, attr, entryTimeout, attrTimeout);
  return b;
}

/** fuse_attr_out as a new buffer. */
export function attrOut(attr: Attr, attrTimeout: number): Buffer {
  const b = Buffer.allocUnsafe(ATTR_OUT_SIZE);
  const [s, ns] = splitSeconds(attrTimeout);
  b.writeBigUInt64LE(s, 0);
  b.writeUInt32LE(ns, 8);
  b.writeUInt32LE(0, 12);
  writeAttr(b, 16, attr);
  return b;
}

/** fuse_open_out with file handle 0. */
export function openOut(openFlags: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

/** fuse_getxattr_out: the size a getxattr/listxattr probe (size 0) asked for. */
export function xattrSizeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** fuse_statfs_out (a fuse_kstatfs). */
export function statfsOut(s: { blocks: number; files: number }): Buffer {
  const b = Buffer.alloc(80);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeUInt32LE(4096, 40); // bsize
  b.writeUInt32LE(255, 44); // namelen
  b.writeUInt32LE(4096, 48); // frsize
  return b;
}

/** Bytes a fuse_dirent for a name of `nameLength` bytes takes (24-byte header, padded to 8). */
export function direntSize(nameLength: number): number {
  return (24 + nameLength + 7) & ~7;
}

/** Bytes a fuse_direntplus takes (entry_out + dirent). */
export function direntplusSize(nameLength: number): number {
  return ENTRY_OUT_SIZE + direntSize(nameLength);
}

/** Write a fuse_dirent at `off`; returns the offset after it. `type` is the d_type (mode >> 12). */
export function writeDirent(buf: Buffer, off: number, ino: number, nextOffset: number, type: number, name: Buffer): number {
  buf.writeBigUInt64LE(BigInt(ino), off);
  buf.writeBigUInt64LE(BigInt(nextOffset), off + 8);
  buf.writeUInt32LE(name.length, off + 16);
  buf.writeUInt32LE(type, off + 20);
  name.copy(buf, off + 24);
  const end = off + direntSize(name.length);
  buf.fill(0, off + 24 + name.length, end);
  return end;
}

/** The kernel's 32-bit device encoding (new_encode_dev) of major:minor, as fuse_attr.rdev carries it. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}
