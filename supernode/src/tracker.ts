/** Which peers hold which layers: announcements that expire unless renewed. */
import { DEFAULT_TRACKER_TTL_MS } from "./constants.ts";
import { BadRequestError } from "./errors.ts";
import { DIGEST_RE } from "./layer-ref.ts";

/** One peer as agents see it. */
export interface PeerInfo {
  peerId: string;
  addrs: string[];
}

/** A validated `POST /v1/announce` body. */
export interface Announcement extends PeerInfo {
  /** Layer digests the peer holds, at least partly. */
  layers: string[];
}

const MAX_ADDRS = 32;
const MAX_LAYERS = 10_000;
const MAX_STRING = 512;

/** Parse an announce body (untrusted JSON); throws `BadRequestError`. */
export function parseAnnouncement(body: unknown): Announcement {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("announce: body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (v: unknown, what: string): string => {
    if (typeof v !== "string" || v.length === 0 || v.length > MAX_STRING) throw new BadRequestError(`announce: ${what} must be a non-empty string of at most ${MAX_STRING} characters`);
    return v;
  };
  const list = (v: unknown, what: string, max: number): unknown[] => {
    if (!Array.isArray(v) || v.length > max) throw new BadRequestError(`announce: ${what} must be an array of at most ${max} entries`);
    return v;
  };
  const peerId = str(b.peerId, "peerId");
  const addrs = list(b.addrs, "addrs", MAX_ADDRS).map((a) => str(a, "addrs[]"));
  const layers = list(b.layers, "layers", MAX_LAYERS).map((l) => {
    const d = str(l, "layers[]");
    if (!DIGEST_RE.test(d)) throw new BadRequestError("announce: layers[] must be sha256:<hex> digests");
    return d;
  });
  return { peerId, addrs, layers };
}

interface Entry {
  addrs: string[];
  layers: Set<string>;
  expires: number;
}

/** Settings of a `Tracker`. */
export interface TrackerInit {
  /** Entries expire this long after their last announce, ms. */
  ttlMs?: number;
}

/**
 * In-memory tracker. An announce replaces the peer's previous entry (addrs
 * and layers) and renews it for `ttlMs`; expired entries are never
 * returned and are swept lazily.
 */
export class Tracker {
  readonly #peers = new Map<string, Entry>();
  readonly #byLayer = new Map<string, Set<string>>();
  readonly #ttl: number;
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(components: { now?: () => number } = {}, init: TrackerInit = {}) {
    this.#now = components.now ?? Date.now;
    this.#ttl = init.ttlMs ?? DEFAULT_TRACKER_TTL_MS;
  }

  /** Record an announcement; returns the TTL granted, ms. */
  announce(a: Announcement): number {
    this.#remove(a.peerId);
    const entry: Entry = { addrs: [...new Set(a.addrs)], layers: new Set(a.layers), expires: this.#now() + this.#ttl };
    this.#peers.set(a.peerId, entry);
    for (const l of entry.layers) {
      let s = this.#byLayer.get(l);
      if (!s) this.#byLayer.set(l, (s = new Set()));
      s.add(a.peerId);
    }
    // Sweeping is O(peers): at most once per second (or per TTL, if shorter) on announces.
    if (this.#now() - this.#lastSweep >= Math.min(1000, this.#ttl)) this.#sweep();
    return this.#ttl;
  }

  /** Live peers holding `layer`, in no particular order. */
  peers(layer: string): PeerInfo[] {
    const now = this.#now();
    const out: PeerInfo[] = [];
    for (const id of this.#byLayer.get(layer) ?? []) {
      const e = this.#peers.get(id);
      if (e && e.expires > now) out.push({ peerId: id, addrs: [...e.addrs] });
    }
    return out;
  }

  /** Number of live peers. */
  size(): number {
    this.#sweep();
    return this.#peers.size;
  }

  #sweep(): void {
    const now = this.#now();
    this.#lastSweep = now;
    for (const [id, e] of this.#peers) if (e.expires <= now) this.#remove(id);
  }

  #remove(peerId: string): void {
    const e = this.#peers.get(peerId);
    if (!e) return;
    this.#peers.delete(peerId);
    for (const l of e.layers) {
      const s = this.#byLayer.get(l);
      s?.delete(peerId);
      if (s?.size === 0) this.#byLayer.delete(l);
    }
  }
}
