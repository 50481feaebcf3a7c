/**
 * Links and transfers as fluids, advanced in fixed steps of simulated time
 * (`STEP_MS`): each transfer crosses a path of links after a fixed latency;
 * in each step every link's capacity (bytes/s) is split equally among the
 * transfers on it, and a transfer moves at its smallest share along its
 * path. That is max-min fairness without handing a bottlenecked transfer's
 * unused share to the others: exact for paths of one contended link (a
 * host's NIC, a supernode's uplink, the origin's egress), conservative
 * elsewhere. A step costs one pass over the transfers in flight, so
 * thousands of hosts stay cheap; a transfer ends at the end of the step in
 * which its last byte moved.
 */
import type { EventQueue } from "./events.ts";

/** Simulated time per step of the network, ms. */
export const STEP_MS = 1;

/** A link: a host's NIC in one direction, an uplink, the origin's egress. */
export interface Link {
  readonly name: string;
  /** Bytes per second. */
  readonly capacity: number;
  /** Bytes carried so far. */
  carried: number;
  /** Transfers on it in the current step. */
  users: number;
}

interface Transfer {
  path: readonly Link[];
  left: number;
  /** Most units per second this transfer may move (a job on a CPU: one core). */
  max: number;
  done: () => void;
}

/** See the module comment. */
export class Network {
  readonly #events: EventQueue;
  #active: Transfer[] = [];
  #ticking = false;

  constructor(events: EventQueue) {
    this.#events = events;
  }

  /** A new link of `bytesPerSecond`. */
  link(name: string, bytesPerSecond: number): Link {
    return { name, capacity: bytesPerSecond, carried: 0, users: 0 };
  }

  /**
   * Move `bytes` across `path` after `latencyMs`; `done` runs when the last
   * byte arrived. `maxRate` caps this transfer's rate: a link of capacity k
   * whose transfers each take at most 1 is k processors shared by jobs (a
   * host's cores, and a job's CPU-seconds as its "bytes").
   */
  send(path: readonly Link[], bytes: number, latencyMs: number, done: () => void, maxRate = Number.POSITIVE_INFINITY): void {
    this.#events.after(latencyMs, () => {
      this.#active.push({ path, left: bytes, max: maxRate, done });
      if (!this.#ticking) {
        this.#ticking = true;
        this.#events.after(STEP_MS, () => this.#step());
      }
    });
  }

  /** One step: shares, bytes moved, transfers that ended. */
  #step(): void {
    for (const t of this.#active) for (const l of t.path) l.users++;
    const seconds = STEP_MS / 1000;
    const still: Transfer[] = [];
    const ended: Transfer[] = [];
    for (const t of this.#active) {
      let rate = t.max;
      for (const l of t.path) rate = Math.min(rate, l.capacity / l.users);
      const moved = Math.min(t.left, rate * seconds);
      t.left -= moved;
      for (const l of t.path) l.carried += moved;
      (t.left <= 1e-6 ? ended : still).push(t);
    }
    for (const t of this.#active) for (const l of t.path) l.users = 0;
    this.#active = still;
    for (const t of ended) t.done();
    if (this.#active.length > 0) this.#events.after(STEP_MS, () => this.#step());
    else this.#ticking = false;
  }
}
