/**
 * The parts of erofs' on-disk format (the kernel's fs/erofs/erofs_fs.h)
 * that block mode writes: 512-byte blocks, extended (64-byte) inodes,
 * inline xattrs, plain directories, inline or plain symlinks, and
 * chunk-based regular files whose one chunk index points into an extra
 * device (the layer's tar stream). Little-endian throughout.
 */
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from "@shoal/base";

export const EROFS_MAGIC = 0xe0f5e1e2;
/** The superblock's offset in the image. */
export const SUPER_OFFSET = 1024;
export const SUPER_SIZE = 128;
/** Block size: 512 bytes, so tar data (512-aligned in its stream) is block-aligned. */
export const BLOCK_BITS = 9;
export const BLOCK_SIZE = 1 << BLOCK_BITS;
/** Inode slots: a nid is the 32-byte slot of an inode counted from the metadata area's start. */
export const SLOT_BITS = 5;
export const SLOT_SIZE = 1 << SLOT_BITS;
export const EXTENDED_INODE_SIZE = 64;
export const DEVICE_SLOT_SIZE = 128;
export const DIRENT_SIZE = 12;
export const XATTR_IBODY_HEADER_SIZE = 12;
export const CHUNK_INDEX_SIZE = 8;
/** The longest name a directory entry holds. */
export const NAME_MAX = 255;
/** Largest root nid the superblock's 16-bit field holds. */
export const MAX_ROOT_NID = 0xffff;

export const FEATURE_INCOMPAT_CHUNKED_FILE = 0x4;
export const FEATURE_INCOMPAT_DEVICE_TABLE = 0x8;

/** Data layouts (i_format bits 1..3). */
export const LAYOUT_FLAT_PLAIN = 0;
export const LAYOUT_FLAT_INLINE = 2;
export const LAYOUT_CHUNK_BASED = 4;
/** i_format bit 0: the 64-byte extended inode. */
export const INODE_EXTENDED = 1;
/** Chunk format: indexes (8 bytes, with a device id) rather than a block map. */
export const CHUNK_FORMAT_INDEXES = 0x20;
export const CHUNK_FORMAT_BLKBITS_MASK = 0x1f;

/** Directory entry file types (the kernel's FT_*). */
export const FT_REG = 1;
export const FT_DIR = 2;
export const FT_CHRDEV = 3;
export const FT_BLKDEV = 4;
export const FT_FIFO = 5;
export const FT_SOCK = 6;
export const FT_SYMLINK = 7;


/** xattr name prefixes erofs stores as an index (short prefixes only; no long-prefix table). */
export const XATTR_PREFIXES: ReadonlyArray<{ prefix: string; index: number; whole?: boolean }> = [
  { prefix: "system.posix_acl_access", index: 2, whole: true },
  { prefix: "system.posix_acl_default", index: 3, whole: true },
  { prefix: "user.", index: 1 },
  { prefix: "trusted.", index: 4 },
  { prefix: "security.", index: 6 },
];

/** The erofs directory file type of st_mode `mode`. */
export function fileType(mode: number): number {
  switch (mode & S_IFMT) {
    case S_IFREG: return FT_REG;
    case S_IFDIR: return FT_DIR;
    case S_IFCHR: return FT_CHRDEV;
    case S_IFBLK: return FT_BLKDEV;
    case S_IFIFO: return FT_FIFO;
    case S_IFSOCK: return FT_SOCK;
    case S_IFLNK: return FT_SYMLINK;
    default: return 0;
  }
}
