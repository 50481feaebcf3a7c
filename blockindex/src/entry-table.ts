/**
 * The encoding of a layer's tar entries, shared by the lazy format's index
 * and the seekable index of ordinary gzip layers: front-coded paths, data
 * offsets as gaps from the previous entry's end.
 */
import type { EntryType, TarEntry } from "./tar-entry.ts";
import { hashBytes } from "./path-table.ts";
import { isNormalizedTarPath } from "./tar-path.ts";
import type { ByteReader, ByteWriter } from "./varint.ts";

const TYPE_CODES: EntryType[] = ["file", "hardlink", "symlink", "chardev", "blockdev", "dir", "fifo"];
const F_LINK = 1;
const F_DEV = 2;
const F_XATTR = 4;
const F_NSEC = 8;

/** Length of the common prefix of two byte strings. */
function commonPrefix(a: Buffer, b: Buffer): number {
  const max = Math.min(a.length, b.length);
  let i = 0;
  while (i < max && a[i] === b[i]) i++;
  return i;
}

/** Append `entries` to `w` (see `readEntries`). Deterministic. */
export function writeEntries(w: ByteWriter, entries: readonly TarEntry[]): void {
  w.uint(entries.length);
  let prevPath = Buffer.alloc(0);
  let prevEnd = 0;
  for (const e of entries) {
    const path = Buffer.from(e.path, "utf8");
    const common = commonPrefix(prevPath, path);
    let flags = 0;
    if (e.linkname !== undefined) flags |= F_LINK;
    if (e.devmajor !== undefined || e.devminor !== undefined) flags |= F_DEV;
    if (e.xattrs && e.xattrs.size > 0) flags |= F_XATTR;
    if (e.mtimeNsec !== 0) flags |= F_NSEC;
    w.byte(TYPE_CODES.indexOf(e.type));
    w.byte(flags);
    w.uint(common);
    w.blob(path.subarray(common));
    w.uint(e.mode);
    w.uint(e.uid);
    w.uint(e.gid);
    w.int(e.mtimeSec);
    if (flags & F_NSEC) w.uint(e.mtimeNsec);
    w.uint(e.size);
    w.uint(e.dataOffset - prevEnd);
    if (flags & F_LINK) w.blob(Buffer.from(e.linkname!, "utf8"));
    if (flags & F_DEV) {
      w.uint(e.devmajor ?? 0);
      w.uint(e.devminor ?? 0);
    }
    if (flags & F_XATTR) {
      const keys = [...e.xattrs!.keys()].sort();
      w.uint(keys.length);
      for (const k of keys) {
        w.blob(Buffer.from(k, "utf8"));
        w.blob(e.xattrs!.get(k)!);
      }
    }
    prevPath = path;
    prevEnd = e.dataOffset + e.size;
  }
}

/**
 * Read the entries `writeEntries` wrote, from `r` over `buf`, with each
 * path's hash (for `PathTable`). Throws `fail(message)` for anything
 * malformed: paths that are not clean relative paths, data past
 * `uncompressedSize`, hardlinks out of the layer.
 */
export function readEntries(r: ByteReader, buf: Buffer, uncompressedSize: number, fail: (msg: string) => Error): { entries: TarEntry[]; hashes: Uint32Array } {
  const count = r.uint();
  if (count > r.remaining) throw fail("index entry count is malformed");
  const entries = new Array<TarEntry>(count);
  const hashes = new Uint32Array(count);
  // Paths are rebuilt in one scratch buffer (prefix kept, suffix copied in)
  // so each becomes one flat string without intermediate allocations.
  let scratch = Buffer.alloc(4096);
  let prevLen = 0;
  let prevEnd = 0;
  for (let i = 0; i < count; i++) {
    const type = TYPE_CODES[r.byte()];
    if (!type) throw fail(`entry ${i} has an unknown type`);
    const flags = r.byte();
    const common = r.uint();
    if (common > prevLen) throw fail(`entry ${i} has a bad path prefix`);
    const suffixLen = r.uint();
    if (suffixLen > r.remaining) throw fail("index truncated");
    const len = common + suffixLen;
    if (len > scratch.length) {
      const next = Buffer.alloc(Math.max(len, scratch.length * 2));
      scratch.copy(next, 0, 0, common);
      scratch = next;
    }
    buf.copy(scratch, common, r.pos, r.pos + suffixLen);
    r.pos += suffixLen;
    const path = scratch.toString("utf8", 0, len);
    if (!isNormalizedTarPath(path)) throw fail(`entry ${i} has a path that is absolute, escapes the layer root or is not clean: ${JSON.stringify(path)}`);
    hashes[i] = hashBytes(scratch, 0, len);
    prevLen = len;
    const e: TarEntry = {
      path,
      type,
      mode: r.uint(),
      uid: r.uint(),
      gid: r.uint(),
      mtimeSec: r.int(),
      mtimeNsec: flags & F_NSEC ? r.uint() : 0,
      size: r.uint(),
      dataOffset: 0,
    };
    e.dataOffset = prevEnd + r.uint();
    if (e.dataOffset + e.size > uncompressedSize) throw fail(`entry ${e.path} runs past the end of the layer`);
    if (flags & F_LINK) {
      e.linkname = r.string();
      if (type === "hardlink" && !isNormalizedTarPath(e.linkname)) throw fail(`hardlink ${JSON.stringify(path)} names a target outside the layer: ${JSON.stringify(e.linkname)}`);
    }
    if (flags & F_DEV) {
      e.devmajor = r.uint();
      e.devminor = r.uint();
    }
    if (flags & F_XATTR) {
      const k = r.uint();
      if (k > r.remaining) throw fail("xattr count is malformed");
      e.xattrs = new Map();
      for (let j = 0; j < k; j++) e.xattrs.set(r.blob().toString("utf8"), new Uint8Array(r.blob()));
    }
    entries[i] = e;
    prevEnd = e.dataOffset + e.size;
  }
  return { entries, hashes };
}
