/** Entry kinds shoal keeps from a tar stream (after PAX/GNU headers are folded in). */
export type EntryType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "dir" | "fifo";

/**
 * One tar entry, as read from the uncompressed layer stream.
 *
 * Offsets are byte offsets in the uncompressed tar stream. `dataOffset` is
 * where the entry's data starts; the data is `size` bytes long (zero for
 * every type but `file`). `path` is normalised: no leading `./` or `/`, no
 * trailing `/`, never `..`; the layer root is `""`.
 */
export interface TarEntry {
  path: string;
  type: EntryType;
  /** Permission bits including setuid/setgid/sticky (tar mode field, & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time: whole seconds since the epoch (may be negative) and nanoseconds. */
  mtimeSec: number;
  mtimeNsec: number;
  /** Data length in bytes (regular files only; 0 otherwise). */
  size: number;
  /** Offset of the entry's data in the uncompressed stream. */
  dataOffset: number;
  /** Symlink target (verbatim) or hardlink target (normalised path). */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes from PAX `SCHILY.xattr.*` records; values are raw bytes. */
  xattrs?: Map<string, Uint8Array>;
}

/** Prefix of an OCI whiteout file name. */
export const WHITEOUT_PREFIX = ".wh.";
/** Name of the OCI opaque-directory marker. */
export const OPAQUE_MARKER = ".wh..wh..opq";
