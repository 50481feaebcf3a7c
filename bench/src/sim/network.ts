/**
 * Links, processors and transfers as fluids, advanced in fixed steps of
 * simulated time (`STEP_MS`). A transfer crosses a path of legs after a
 * fixed latency; a leg is a link and what one byte costs on it: 1 on a
 * network link (a NIC in one direction, an uplink, the origin's egress, in
 * bytes/s), CPU-seconds per byte on a processor (a machine's cores, in
 * CPU-seconds per second). So a stream of chunks through a server's CPU,
 * its NIC, the host's NIC and the host's CPU is one transfer, its stages
 * overlapping as a real stream's do, and it goes at the pace of its
 * slowest leg.
 *
 * In each step every link's capacity is split equally among the transfers
 * on it (on a processor, at most one core each: `perUserMax`), and a
 * transfer moves at its smallest share along its path. That is max-min
 * fairness without handing a bottlenecked transfer's unused share to the
 * others: exact for paths of one contended link, conservative elsewhere.
 * A machine's cores shared by its processes (`perProcess`) are split as
 * Linux's scheduler splits them: among the processes with work on them
 * (each transfer's leg just before, its process's own CPU), max-min fair
 * by their `weight` over what each would use (its transfers' pace on their
 * other legs), what one leaves going to the others; then equally among
 * each process's transfers. A process busy with many streams gets no more
 * of the machine than one busy with a few.
 * A step costs one pass over the transfers in flight, so thousands of
 * hosts stay cheap; a transfer ends at the end of the step in which its
 * last byte moved, and tells each mark (a chunk's end) as it passes it.
 */
import type { EventQueue } from "./events.ts";

/** Simulated time per step of the network, ms, unless a network is given another. */
export const STEP_MS = 1;

/** A link: a host's NIC in one direction, an uplink, the origin's egress, a machine's cores. */
export interface Link {
  readonly name: string;
  /** Units per second: bytes, or CPU-seconds (cores). */
  readonly capacity: number;
  /** Most units per second one transfer may take (a processor: one core). */
  readonly perUserMax: number;
  /** Units carried so far. */
  carried: number;
  /** Share of the capacity taken by steady work that is not a transfer (0 to 1): a supernode's announces. */
  taken: number;
  /** Transfers on it in the current step (`step`). */
  users: number;
  step: number;
  /** Shared by processes, each the leg before it on a path (see the module comment). */
  readonly perProcess: boolean;
  /** A process's share of a `perProcess` link against the others' (1 unless set: a reniced process). */
  weight: number;
}

/** A link on a path, and what one byte of the transfer costs on it (1 on a network link). */
export type Leg = Link | readonly [link: Link, perByte: number];

/** Optional parts of a transfer. */
export interface SendOptions {
  /** Byte offsets, ascending, at which `onMark(k)` is told that mark k passed (a chunk of a stream arrived). */
  marks?: readonly number[];
  onMark?: (k: number) => void;
}

interface Transfer {
  links: Link[];
  weights: number[];
  left: number;
  moved: number;
  marks: readonly number[];
  nextMark: number;
  onMark: ((k: number) => void) | undefined;
  done: () => void;
  cut: boolean;
}

/** Bytes per second a transfer moves on link `l` costing `w` a byte, at its equal share of the link this step. */
function paceOn(l: Link, w: number): number {
  const share = (l.capacity * (1 - l.taken)) / l.users;
  return (share < l.perUserMax ? share : l.perUserMax) / w;
}

/** See the module comment. */
export class Network {
  readonly #events: EventQueue;
  readonly #stepMs: number;
  #active: Transfer[] = [];
  #ticking = false;
  #steps = 0;
  /** By process that worked on a `perProcess` machine: the machine (see `coresOf`). */
  readonly #machineOf = new Map<Link, Link>();
  /** By `perProcess` machine: what each process on it wanted in the last step any worked, cores. */
  readonly #wanted = new Map<Link, Map<Link, number>>();

  /** Steps of `stepMs`: coarser steps make large fleets cheaper, each transfer ending at the end of the step its last byte moved in. */
  constructor(events: EventQueue, stepMs = STEP_MS) {
    this.#events = events;
    this.#stepMs = stepMs;
  }

  /** A new link of `capacity` units per second, at most `perUserMax` for one transfer; `perProcess`: a machine's cores its processes share. */
  link(name: string, capacity: number, perUserMax = Number.POSITIVE_INFINITY, opts: { perProcess?: boolean } = {}): Link {
    return { name, capacity, perUserMax, carried: 0, taken: 0, users: 0, step: -1, perProcess: opts.perProcess === true, weight: 1 };
  }

  /** Move `bytes` across `path` after `latencyMs`; `done` runs when the last byte arrived. Returns a cut: the transfer stops, told nothing more. */
  send(path: readonly Leg[], bytes: number, latencyMs: number, done: () => void, opts: SendOptions = {}): () => void {
    const links = path.map((l) => ("capacity" in l ? l : l[0]));
    const weights = path.map((l) => ("capacity" in l ? 1 : l[1]));
    const t: Transfer = { links, weights, left: bytes, moved: 0, marks: opts.marks ?? [], nextMark: 0, onMark: opts.onMark, done, cut: false };
    this.#events.after(latencyMs, () => {
      if (t.cut) return;
      this.#active.push(t);
      if (!this.#ticking) {
        this.#ticking = true;
        this.#events.after(this.#stepMs, () => this.#step());
      }
    });
    return () => {
      t.cut = true;
    };
  }

  /**
   * The cores process `p` would get now if it wanted a whole core: its
   * own, or on a `perProcess` machine its part of the split beside what
   * the others wanted in the last step they worked.
   */
  coresOf(p: Link): number {
    const own = p.capacity * (1 - p.taken);
    const machine = this.#machineOf.get(p);
    const wanted = machine && this.#wanted.get(machine);
    if (!machine || !wanted) return own;
    let left = machine.capacity * (1 - machine.taken);
    let weight = p.weight;
    for (const q of wanted.keys()) if (q !== p) weight += q.weight;
    for (const [q, want] of [...wanted].filter(([q]) => q !== p).sort((a, b) => a[1] / a[0].weight - b[1] / b[0].weight)) {
      if (want >= (left * q.weight) / weight) break;
      left -= want;
      weight -= q.weight;
    }
    return Math.min(own, (left * p.weight) / weight);
  }

  /** One step: shares, bytes moved, marks passed, transfers that ended. */
  #step(): void {
    const step = ++this.#steps;
    let machines = false;
    for (const t of this.#active) {
      for (const l of t.links) {
        if (l.step !== step) {
          l.step = step;
          l.users = 0;
        }
        l.users++;
        if (l.perProcess) machines = true;
      }
    }
    const cores = machines ? this.#processCores() : undefined;
    const seconds = this.#stepMs / 1000;
    const still: Transfer[] = [];
    const ended: Transfer[] = [];
    const marked: Array<[Transfer, number]> = [];
    for (const t of this.#active) {
      if (t.cut) continue;
      const { links, weights } = t;
      let rate = Number.POSITIVE_INFINITY;
      for (let i = 0; i < links.length; i++) {
        const w = weights[i]!;
        if (w === 0) continue;
        const l = links[i]!;
        const p = l.perProcess ? links[i - 1] : undefined;
        const r = p ? Math.min(cores!.get(p)! / p.users, l.perUserMax) / w : paceOn(l, w);
        if (r < rate) rate = r;
      }
      const moved = Math.min(t.left, rate * seconds);
      t.left -= moved;
      t.moved += moved;
      for (let i = 0; i < links.length; i++) links[i]!.carried += moved * weights[i]!;
      const over = t.left <= 1e-6;
      while (t.nextMark < t.marks.length && (over || t.moved >= t.marks[t.nextMark]! - 1e-6)) marked.push([t, t.nextMark++]);
      (over ? ended : still).push(t);
    }
    this.#active = still;
    for (const [t, k] of marked) t.onMark!(k);
    for (const t of ended) t.done();
    if (this.#active.length > 0) this.#events.after(this.#stepMs, () => this.#step());
    else this.#ticking = false;
  }

  /** Each process's cores on the `perProcess` links this step (see the module comment). */
  #processCores(): Map<Link, number> {
    const wanted = new Map<Link, Map<Link, number>>();
    for (const t of this.#active) {
      if (t.cut) continue;
      const { links, weights } = t;
      for (let i = 1; i < links.length; i++) {
        const machine = links[i]!;
        if (!machine.perProcess || weights[i] === 0) continue;
        let pace = machine.perUserMax / weights[i]!;
        for (let j = 0; j < links.length; j++) {
          const l = links[j]!;
          if (j === i || weights[j] === 0) continue;
          pace = Math.min(pace, paceOn(l, weights[j]!));
        }
        let processes = wanted.get(machine);
        if (!processes) wanted.set(machine, (processes = new Map()));
        const p = links[i - 1]!;
        processes.set(p, (processes.get(p) ?? 0) + pace * weights[i]!);
      }
    }
    const cores = new Map<Link, number>();
    for (const [machine, processes] of wanted) {
      this.#wanted.set(machine, processes);
      let left = machine.capacity * (1 - machine.taken);
      let weight = 0;
      for (const p of processes.keys()) weight += p.weight;
      for (const [p, want] of [...processes].sort((a, b) => a[1] / a[0].weight - b[1] / b[0].weight)) {
        const got = Math.min(want, (left * p.weight) / weight);
        cores.set(p, got);
        this.#machineOf.set(p, machine);
        left -= got;
        weight -= p.weight;
      }
    }
    return cores;
  }
}
