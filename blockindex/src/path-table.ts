/** FNV-1a over bytes `[start, end)` of `b`. */
export function hashBytes(b: Uint8Array, start = 0, end = b.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= b[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** FNV-1a of a string's UTF-8 bytes (equal to `hashBytes` of them). */
export function hashPath(s: string): number {
  return hashBytes(Buffer.from(s, "utf8"));
}

/**
 * Open-addressing hash table from path to the position of the last item
 * with that path, over precomputed path hashes: far cheaper to build than a
 * `Map` of 100,000 strings, and as fast to query.
 */
export class PathTable {
  private readonly slots: Int32Array;
  private readonly mask: number;
  private readonly hashes: Uint32Array;
  private readonly paths: readonly { path: string }[];

  /** `hashes[i]` must be `hashPath(items[i].path)`. */
  constructor(items: readonly { path: string }[], hashes: Uint32Array) {
    this.paths = items;
    this.hashes = hashes;
    let size = 16;
    while (size < items.length * 2) size *= 2;
    this.slots = new Int32Array(size).fill(-1);
    this.mask = size - 1;
    for (let i = 0; i < items.length; i++) {
      const h = hashes[i]!;
      let slot = h & this.mask;
      for (;;) {
        const at = this.slots[slot]!;
        if (at < 0 || (hashes[at] === h && items[at]!.path === items[i]!.path)) break; // a later duplicate replaces the earlier one
        slot = (slot + 1) & this.mask;
      }
      this.slots[slot] = i;
    }
  }

  /** Position of the last item whose path is `path`, or -1. */
  get(path: string): number {
    const h = hashPath(path);
    let slot = h & this.mask;
    for (;;) {
      const at = this.slots[slot]!;
      if (at < 0) return -1;
      if (this.hashes[at] === h && this.paths[at]!.path === path) return at;
      slot = (slot + 1) & this.mask;
    }
  }
}
