/** Which peers hold which layers and chunks: announcements that expire unless renewed. */
import { HolderList } from "./holder-list.ts";
import { base64BitmapCount, base64BitmapHas, decodeChunkBitmap, MAX_PEERS_ANSWERED, NotSwarmMemberError, type Announcement, type LayerHolder, type PeerReport } from "@shoal/swarm";
import { DEFAULT_BAN_MS, DEFAULT_REPORTS_TO_BAN, DEFAULT_TRACKER_TTL_MS } from "./constants.ts";

/** What one peer holds of one layer: its bitmap as announced (base64, checked; read in place), or undefined for the whole layer. */
type Holding = string | undefined;

interface Entry {
  addrs: string[];
  /** When this peer first announced (kept across its renewals): reports count once it is established. */
  firstSeen: number;
  /** The announce's own time (its `ts`), when it carried one: an older or equal one is a replay. */
  ts: number;
  layers: Map<string, Holding>;
  expires: number;
  /** Bytes of its bitmaps. */
  bitmapBytes: number;
}

/**
 * Default bounds of a `PeerTable`. Measured (bench/src/tracker-memory.ts):
 * a holding costs about 80 bytes of heap when its layer is held by many
 * peers, about 140 when every layer is another (a flood of made-up
 * digests), so 500,000 holdings take 40 to 70 MB, plus the bitmaps (at
 * most 64 MiB).
 */
export const DEFAULT_TRACKER_MAX_PEERS = 10_000;
export const DEFAULT_TRACKER_MAX_HOLDINGS = 500_000;
export const DEFAULT_TRACKER_MAX_BITMAP_BYTES = 64 << 20;

/** Settings of a `PeerTable`. */
export interface PeerTableInit {
  /** Entries expire this long after their last announce, ms. */
  ttlMs?: number;
  /** Distinct reporters after which a peer is no longer listed. Default 2. */
  reportsToBan?: number;
  /** How long a banned peer stays unlisted (its announces are ignored), ms. Default 1 h. */
  banMs?: number;
  /** Most peers listed; past it the peers that announced longest ago go first. */
  maxPeers?: number;
  /** Most (peer, layer) holdings over all peers, likewise. */
  maxHoldings?: number;
  /** Most bytes of chunk bitmaps over all peers, likewise. */
  maxBitmapBytes?: number;
  /**
   * How long a peer must have been announcing before its reports count,
   * ms (fresh keys cannot ban an honest peer). Default 5 minutes.
   */
  reporterAgeMs?: number;
  /** Reports one reporter may make per minute; more are refused. Default 30. */
  reportsPerMinute?: number;
}

/** Bounds of the report and ban tables (the oldest go first past them). */
export const MAX_REPORTED_PEERS = 10_000;
export const MAX_BANNED_PEERS = 10_000;
export const DEFAULT_REPORTER_AGE_MS = 5 * 60_000;
export const DEFAULT_REPORTS_PER_MINUTE = 30;

/** Why a report was not taken: the reporter has not announced (long enough), or reports too often. */
export type ReportRefusal = "unknown-reporter" | "rate-limited";

/**
 * The tracker's table, in memory. An announce replaces the peer's previous entry (addrs,
 * layers and chunk bitmaps) and renews it for `ttlMs`; expired entries are
 * never returned and are swept lazily.
 */
export class PeerTable {
  readonly #peers = new Map<string, Entry>();
  readonly #byLayer = new Map<string, LayerHolders>();
  readonly #ttl: number;
  readonly #reportsToBan: number;
  readonly #banMs: number;
  /** Reporters per reported peer (kept while the ban window lasts; at most `MAX_REPORTED_PEERS`). */
  readonly #reports = new Map<string, { reporters: Set<string>; since: number }>();
  /** Reports per reporter in the current minute. */
  readonly #reportRate = new Map<string, { minute: number; count: number }>();
  readonly #reporterAge: number;
  readonly #reportsPerMinute: number;
  /** Banned peers and until when. */
  readonly #banned = new Map<string, number>();
  readonly #now: () => number;
  #lastSweep = 0;
  readonly #max: { peers: number; holdings: number; bitmapBytes: number };
  #holdings = 0;
  #bitmapBytes = 0;
  /** Peers dropped to stay within the bounds, since start. */
  #evicted = 0;

  constructor(components: { now?: () => number } = {}, init: PeerTableInit = {}) {
    this.#now = components.now ?? Date.now;
    this.#ttl = init.ttlMs ?? DEFAULT_TRACKER_TTL_MS;
    this.#reportsToBan = init.reportsToBan ?? DEFAULT_REPORTS_TO_BAN;
    this.#banMs = init.banMs ?? DEFAULT_BAN_MS;
    this.#reporterAge = init.reporterAgeMs ?? DEFAULT_REPORTER_AGE_MS;
    this.#reportsPerMinute = init.reportsPerMinute ?? DEFAULT_REPORTS_PER_MINUTE;
    this.#max = {
      peers: init.maxPeers ?? DEFAULT_TRACKER_MAX_PEERS,
      holdings: init.maxHoldings ?? DEFAULT_TRACKER_MAX_HOLDINGS,
      bitmapBytes: init.maxBitmapBytes ?? DEFAULT_TRACKER_MAX_BITMAP_BYTES,
    };
  }

  /**
   * Record that `reporter` got bad bytes from `peerId`. Once enough distinct
   * established peers reported it, it is dropped and its announces are
   * ignored for the ban time. Returns true when the peer is banned now. (One
   * reporter alone cannot ban a peer: an agent already stops asking a peer
   * that lied to it.) Only a live peer that has announced for
   * `reporterAgeMs` may report (a refusal says why), at most
   * `reportsPerMinute` times a minute; a report about a peer the table does
   * not list is taken and changes nothing.
   */
  report(r: PeerReport): boolean | ReportRefusal {
    const now = this.#now();
    const reporter = this.#peers.get(r.reporter);
    if (!reporter || reporter.expires <= now || now - reporter.firstSeen < this.#reporterAge) return "unknown-reporter";
    const minute = Math.floor(now / 60_000);
    const rate = this.#reportRate.get(r.reporter);
    if (rate && rate.minute === minute) {
      if (++rate.count > this.#reportsPerMinute) return "rate-limited";
    } else {
      this.#reportRate.delete(r.reporter);
      this.#reportRate.set(r.reporter, { minute, count: 1 });
      trimOldest(this.#reportRate, this.#max.peers);
    }
    if (this.isBanned(r.peerId)) return true;
    if (!this.#peers.has(r.peerId) || r.peerId === r.reporter) return false;
    let e = this.#reports.get(r.peerId);
    if (!e || now - e.since > this.#banMs) {
      this.#reports.delete(r.peerId);
      this.#reports.set(r.peerId, (e = { reporters: new Set(), since: now }));
      trimOldest(this.#reports, MAX_REPORTED_PEERS);
    }
    e.reporters.add(r.reporter);
    if (e.reporters.size < this.#reportsToBan) return false;
    this.#reports.delete(r.peerId);
    this.#banned.set(r.peerId, now + this.#banMs);
    trimOldest(this.#banned, MAX_BANNED_PEERS);
    this.#remove(r.peerId);
    return true;
  }

  /** True while `peerId` is banned. */
  isBanned(peerId: string): boolean {
    const until = this.#banned.get(peerId);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#banned.delete(peerId);
    return false;
  }

  /**
   * Record an announcement (ignored from a banned peer); returns the TTL
   * granted, ms. `ts` is the time the peer signed it: one not newer than the
   * peer's last accepted announce is a replay (`NotSwarmMemberError`).
   */
  announce(a: Announcement, ts = 0): number {
    if (this.isBanned(a.peerId)) return this.#ttl;
    const previous = this.#peers.get(a.peerId);
    if (previous && ts > 0 && ts <= previous.ts) throw new NotSwarmMemberError(`announce: not newer than the last one of peer ${a.peerId} (a replay?)`);
    this.#remove(a.peerId);
    const layers = new Map<string, Holding>();
    let bitmapBytes = 0;
    for (const digest of a.layers) {
      const text = a.chunks?.[digest];
      if (text !== undefined) decodeChunkBitmap(text); // refuses what is not a bitmap
      bitmapBytes += text?.length ?? 0;
      // one string per layer however many peers hold it (each announce parses its own copy)
      layers.set(this.#byLayer.get(digest)?.layer ?? digest, text);
    }
    const alive = previous && previous.expires > this.#now();
    const entry: Entry = { addrs: [...new Set(a.addrs)], firstSeen: alive ? previous.firstSeen : this.#now(), ts, layers, expires: this.#now() + this.#ttl, bitmapBytes };
    this.#makeRoom(entry);
    this.#peers.set(a.peerId, entry);
    this.#holdings += layers.size;
    this.#bitmapBytes += bitmapBytes;
    for (const l of entry.layers.keys()) {
      const s = this.#byLayer.get(l);
      if (!s) this.#byLayer.set(l, { layer: l, peers: a.peerId });
      else addHolder(s, a.peerId);
    }
    // Sweeping costs the expired peers only; at most once per second (or per TTL, if shorter) on announces.
    if (this.#now() - this.#lastSweep >= Math.min(1000, this.#ttl)) this.#sweep();
    return this.#ttl;
  }

  /**
   * Live peers holding `layer` (with their chunk bitmaps), or only those
   * holding chunk `chunk` of it when given; at most `MAX_PEERS_ANSWERED`,
   * a random sample when more qualify, in random order.
   */
  peers(layer: string, chunk?: number): LayerHolder[] {
    const now = this.#now();
    const holders = this.#byLayer.get(layer);
    const answer = (id: string): LayerHolder | undefined => {
      const e = this.#peers.get(id);
      if (!e || e.expires <= now) return undefined;
      const held = e.layers.get(layer);
      if (chunk !== undefined && held !== undefined && !base64BitmapHas(held, chunk)) return undefined;
      return { peerId: id, addrs: [...e.addrs], ...(held !== undefined ? { chunks: held } : {}) };
    };
    // Many holders: a sample of random positions, O(MAX_PEERS_ANSWERED) whatever their number;
    // a walk of all of them only when the sample finds none (holders of a rare chunk).
    if (holders && typeof holders.peers !== "string" && holders.peers.size > 4 * MAX_PEERS_ANSWERED) {
      const list = holders.peers;
      const tried = new Set<number>();
      const out: LayerHolder[] = [];
      for (let k = 0; k < 4 * MAX_PEERS_ANSWERED && out.length < MAX_PEERS_ANSWERED; k++) {
        const i = Math.floor(Math.random() * list.size);
        if (tried.has(i)) continue;
        tried.add(i);
        const h = answer(list.at(i));
        if (h) out.push(h);
      }
      if (out.length > 0) return out;
    }
    const out: LayerHolder[] = [];
    for (const id of holdersOf(holders)) {
      const h = answer(id);
      if (h) out.push(h);
    }
    // Fisher-Yates: spread load over holders, and bound the answer.
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out.slice(0, MAX_PEERS_ANSWERED);
  }

  /**
   * Per layer, how many live peers hold it and how much: whole, or the
   * chunks their bitmaps mark (the status page's tracker view). The
   * `limit` layers held by the most peers.
   */
  layerView(limit = 100): Array<{ layer: string; peers: number; whole: number; chunksHeld: number }> {
    const now = this.#now();
    const out: Array<{ layer: string; peers: number; whole: number; chunksHeld: number }> = [];
    for (const [layer, holders] of this.#byLayer) {
      const row = { layer, peers: 0, whole: 0, chunksHeld: 0 };
      for (const id of holdersOf(holders)) {
        const e = this.#peers.get(id);
        if (!e || e.expires <= now) continue;
        row.peers++;
        const held = e.layers.get(layer);
        if (held === undefined) row.whole++;
        else row.chunksHeld += base64BitmapCount(held);
      }
      if (row.peers > 0) out.push(row);
    }
    return out.sort((a, b) => b.peers - a.peers || (a.layer < b.layer ? -1 : 1)).slice(0, limit);
  }

  /** What the table holds against its bounds, and how many peers it dropped to stay within them. */
  stats(): { peers: number; holdings: number; bitmapBytes: number; evicted: number; reported: number; banned: number } {
    return { peers: this.#peers.size, holdings: this.#holdings, bitmapBytes: this.#bitmapBytes, evicted: this.#evicted, reported: this.#reports.size, banned: this.#banned.size };
  }

  /** Number of live peers. */
  size(): number {
    this.#sweep();
    return this.#peers.size;
  }

  /** Drop expired peers: the map keeps announce order, which is expiry order (one TTL for all), so the walk stops at the first live one. */
  #sweep(): void {
    const now = this.#now();
    this.#lastSweep = now;
    for (const [id, e] of this.#peers) {
      if (e.expires > now) return;
      this.#remove(id);
    }
  }

  /** Drop the peers that announced longest ago (the map keeps announce order) until `entry` fits the bounds. */
  #makeRoom(entry: Entry): void {
    const over = () => this.#peers.size + 1 > this.#max.peers
      || this.#holdings + entry.layers.size > this.#max.holdings
      || this.#bitmapBytes + entry.bitmapBytes > this.#max.bitmapBytes;
    if (!over()) return;
    this.#sweep();
    for (const id of this.#peers.keys()) {
      if (!over()) return;
      this.#remove(id);
      this.#evicted++;
    }
  }

  #remove(peerId: string): void {
    const e = this.#peers.get(peerId);
    if (!e) return;
    this.#peers.delete(peerId);
    this.#holdings -= e.layers.size;
    this.#bitmapBytes -= e.bitmapBytes;
    for (const l of e.layers.keys()) {
      const s = this.#byLayer.get(l);
      if (s && removeHolder(s, peerId)) this.#byLayer.delete(l);
    }
  }
}

/**
 * The peers holding one layer, and the layer's digest string that every
 * holding of it shares. One holder is kept as its id, without a set: a
 * flood of made-up layers costs no more than it must.
 */
interface LayerHolders {
  readonly layer: string;
  peers: string | HolderList;
}

function addHolder(h: LayerHolders, peerId: string): void {
  if (typeof h.peers === "string") {
    if (h.peers !== peerId) h.peers = new HolderList([h.peers, peerId]);
  } else h.peers.add(peerId);
}

/** Drops `peerId` from `h`; true when no holder is left. */
function removeHolder(h: LayerHolders, peerId: string): boolean {
  if (typeof h.peers === "string") return h.peers === peerId;
  h.peers.delete(peerId);
  if (h.peers.size === 1) h.peers = h.peers.at(0);
  return false;
}

function holdersOf(h: LayerHolders | undefined): Iterable<string> {
  return h === undefined ? [] : typeof h.peers === "string" ? [h.peers] : h.peers;
}

/** Drop the oldest entries of `m` (insertion order) past `max`. */
function trimOldest(m: Map<string, unknown>, max: number): void {
  for (const k of m.keys()) {
    if (m.size <= max) return;
    m.delete(k);
  }
}
