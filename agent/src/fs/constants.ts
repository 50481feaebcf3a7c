/** Defaults of the layer filesystem. */

/** Seconds the kernel may cache a name lookup (positive or negative) inside a layer: the data never changes. */
export const DEFAULT_ENTRY_TIMEOUT_S = 86_400;
/** Seconds the kernel may cache attributes inside a layer. */
export const DEFAULT_ATTR_TIMEOUT_S = 86_400;
/** Seconds the kernel may cache the mount root (its listing changes as layers come and go). */
export const ROOT_TIMEOUT_S = 1;
/** Filesystem name shown as the mount source and subtype (`fuse.shoal` in /proc/mounts). */
export const DEFAULT_FS_NAME = "shoal";
/** Largest READ the kernel sends, in 4 KiB pages (256 = 1 MiB, the kernel's default limit). */
export const MAX_PAGES = 256;
/**
 * Largest WRITE payload announced to the kernel (writes are refused anyway).
 * The kernel refuses a read(2) of /dev/fuse into a buffer smaller than a
 * WRITE of this size with its headers, and the poll reader reads 64 KiB.
 */
export const MAX_WRITE = 32 * 1024;
/** Background (readahead, async) requests the kernel keeps in flight. */
export const MAX_BACKGROUND = 64;
/** Read-ahead of the FUSE device, in KiB (the kernel default is 128). */
export const DEFAULT_READ_AHEAD_KB = 1024;
