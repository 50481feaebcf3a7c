/**
 * Links and transfers as fluids: each link has a capacity (bytes/s); each
 * transfer crosses a path of links after a fixed latency, and at every
 * moment the active transfers share the links max-min fairly (progressive
 * filling: the most contended link fixes the rate of the transfers through
 * it, the rest share what is left). Rates are recomputed whenever a transfer
 * starts or ends, which is when they change.
 */
import type { EventQueue } from "./events.ts";

/** A link: a host's NIC in one direction, an uplink, the origin's egress. */
export interface Link {
  readonly name: string;
  /** Bytes per second. */
  readonly capacity: number;
  /** Bytes carried so far. */
  carried: number;
}

interface Transfer {
  path: readonly Link[];
  left: number;
  rate: number;
  done: () => void;
}

/** See the module comment. */
export class Network {
  readonly #events: EventQueue;
  readonly #active = new Set<Transfer>();
  #last = 0;
  #wake = 0;

  constructor(events: EventQueue) {
    this.#events = events;
  }

  /** A new link of `bytesPerSecond`. */
  link(name: string, bytesPerSecond: number): Link {
    return { name, capacity: bytesPerSecond, carried: 0 };
  }

  /** Move `bytes` across `path` after `latencyMs`; `done` runs when the last byte arrived. */
  send(path: readonly Link[], bytes: number, latencyMs: number, done: () => void): void {
    this.#events.after(latencyMs, () => {
      this.#advance();
      this.#active.add({ path, left: bytes, rate: 0, done });
      this.#reshare();
    });
  }

  /** Account the bytes every transfer moved since the last change. */
  #advance(): void {
    const dt = (this.#events.now - this.#last) / 1000;
    this.#last = this.#events.now;
    if (dt <= 0) return;
    for (const t of this.#active) {
      const moved = Math.min(t.left, t.rate * dt);
      t.left -= moved;
      for (const l of t.path) l.carried += moved;
    }
  }

  /** Max-min fair rates, then a wake-up at the next transfer's end. */
  #reshare(): void {
    for (const t of [...this.#active]) {
      if (t.left <= 1e-6) {
        this.#active.delete(t);
        t.done();
      }
    }
    const unfixed = new Set(this.#active);
    const spare = new Map<Link, number>();
    for (const t of unfixed) for (const l of t.path) spare.set(l, l.capacity);
    while (unfixed.size > 0) {
      // the link whose fair share is smallest fixes its transfers at that share
      let bottleneck: Link | undefined;
      let share = Number.POSITIVE_INFINITY;
      for (const [l, cap] of spare) {
        let n = 0;
        for (const t of unfixed) if (t.path.includes(l)) n++;
        if (n > 0 && cap / n < share) {
          share = cap / n;
          bottleneck = l;
        }
      }
      if (!bottleneck) break;
      for (const t of [...unfixed]) {
        if (!t.path.includes(bottleneck)) continue;
        t.rate = share;
        unfixed.delete(t);
        for (const l of t.path) spare.set(l, spare.get(l)! - share);
      }
      spare.delete(bottleneck);
    }
    let next = Number.POSITIVE_INFINITY;
    for (const t of this.#active) if (t.rate > 0) next = Math.min(next, (t.left / t.rate) * 1000);
    if (next === Number.POSITIVE_INFINITY) return;
    const wake = ++this.#wake;
    this.#events.after(next, () => {
      if (wake !== this.#wake) return; // a later change re-planned
      this.#advance();
      this.#reshare();
    });
  }
}
