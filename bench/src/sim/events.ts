/**
 * The simulator's clock: a queue of callbacks by simulated time (ms),
 * earliest first, ties in the order they were scheduled. Nothing here reads
 * the wall clock. A run is not quite a function of its inputs and seed: the
 * tracker's own `PeerTable` samples peers with `Math.random`, so figures
 * move in their last digits from run to run.
 */
export class EventQueue {
  #now = 0;
  #seq = 0;
  readonly #heap: Array<{ at: number; seq: number; run: () => void }> = [];

  /** The simulated time, ms. */
  get now(): number {
    return this.#now;
  }

  /** Run `fn` `delay` ms from now (never in the past). */
  after(delay: number, fn: () => void): void {
    this.#push({ at: this.#now + Math.max(0, delay), seq: this.#seq++, run: fn });
  }

  /** Run events until none is left or the next is past `until` ms; returns the events run. */
  run(until = Number.POSITIVE_INFINITY): number {
    let n = 0;
    while (this.#heap.length > 0 && this.#heap[0]!.at <= until) {
      const e = this.#pop();
      this.#now = e.at;
      e.run();
      n++;
    }
    return n;
  }

  #less(i: number, j: number): boolean {
    const a = this.#heap[i]!;
    const b = this.#heap[j]!;
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(e: { at: number; seq: number; run: () => void }): void {
    const h = this.#heap;
    h.push(e);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  #pop(): { at: number; seq: number; run: () => void } {
    const h = this.#heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.#less(l, m)) m = l;
        if (r < h.length && this.#less(r, m)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
