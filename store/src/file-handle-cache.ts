import { open, type FileHandle } from "node:fs/promises";

interface Slot {
  handle: Promise<FileHandle>;
  /** Reads currently using the handle; it is closed only when this drops to 0. */
  refs: number;
  /** No longer in the cache: close when the last user releases it. */
  dropped: boolean;
}

/**
 * A bounded LRU of read-only file handles, keyed by path, so random reads
 * of chunk files do not reopen the file each time.
 *
 * Handles are reference counted: a handle pushed out of the cache (by the
 * bound, `invalidate` or `closeAll`) is closed only after the reads using it
 * finish, so a read never sees a closed descriptor. Reads of a file unlinked
 * meanwhile still return its (immutable) bytes.
 */
export class FileHandleCache {
  private readonly slots = new Map<string, Slot>(); // oldest first
  private readonly max: number;
  private closed = false;

  /** `max` >= 1: handles kept open while idle (in-use handles may exceed it briefly). */
  constructor(max: number) {
    this.max = Math.max(1, max);
  }

  /** Number of handles currently cached. */
  get size(): number {
    return this.slots.size;
  }

  /**
   * Run `fn` with a read-only handle on `path`, opening it if not cached.
   * Rejects with the open error (e.g. ENOENT) if the file cannot be opened;
   * a failed open is not cached.
   */
  async with<T>(path: string, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    let slot = this.slots.get(path);
    if (slot) {
      this.slots.delete(path);
      this.slots.set(path, slot);
    } else {
      const fresh: Slot = { handle: open(path, "r"), refs: 0, dropped: this.closed };
      slot = fresh;
      fresh.handle.catch(() => {
        if (this.slots.get(path) === fresh) this.slots.delete(path);
      });
      if (!this.closed) {
        this.slots.set(path, fresh);
        this.trim();
      }
    }
    slot.refs++;
    try {
      return await fn(await slot.handle);
    } finally {
      slot.refs--;
      if (slot.dropped && slot.refs === 0) void closeSlot(slot);
    }
  }

  /** Forget `path` (its file is being deleted); its handle closes once idle. */
  invalidate(path: string): void {
    const slot = this.slots.get(path);
    if (!slot) return;
    this.slots.delete(path);
    this.drop(slot);
  }

  /** Close every idle handle now, and busy ones when their reads finish; later reads do not cache. */
  async closeAll(): Promise<void> {
    this.closed = true;
    const idle: Promise<void>[] = [];
    for (const slot of this.slots.values()) {
      slot.dropped = true;
      if (slot.refs === 0) idle.push(closeSlot(slot));
    }
    this.slots.clear();
    await Promise.all(idle);
  }

  private trim(): void {
    for (const [path, slot] of this.slots) {
      if (this.slots.size <= this.max) break;
      this.slots.delete(path);
      this.drop(slot);
    }
  }

  private drop(slot: Slot): void {
    slot.dropped = true;
    if (slot.refs === 0) void closeSlot(slot);
  }
}

async function closeSlot(slot: Slot): Promise<void> {
  try {
    await (await slot.handle).close();
  } catch {
    // open failed, or already closed: nothing to release
  }
}
