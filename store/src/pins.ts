/**
 * Which chunks are pinned, by whom. A digest stays pinned while any owner
 * pins it; an owner's pins accumulate until `unpin(owner)`.
 */
export class PinSet {
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly counts = new Map<string, number>();

  /** Add `digests` to `owner`'s pins (pinning one digest twice is one pin). */
  pin(owner: string, digests: Iterable<string>): void {
    let mine = this.byOwner.get(owner);
    if (!mine) this.byOwner.set(owner, (mine = new Set()));
    for (const d of digests) {
      if (mine.has(d)) continue;
      mine.add(d);
      this.counts.set(d, (this.counts.get(d) ?? 0) + 1);
    }
  }

  /** Drop every pin of `owner`; unknown owners are ignored. */
  unpin(owner: string): void {
    const mine = this.byOwner.get(owner);
    if (!mine) return;
    this.byOwner.delete(owner);
    for (const d of mine) {
      const n = (this.counts.get(d) ?? 1) - 1;
      if (n > 0) this.counts.set(d, n);
      else this.counts.delete(d);
    }
  }

  /** True if some owner pins `digest`. */
  has(digest: string): boolean {
    return this.counts.has(digest);
  }
}
