/** Which peers hold which layers and chunks: announcements that expire unless renewed. */
import { BadRequestError } from "@shoal/base";
import { bitmapHas, decodeChunkBitmap } from "./chunk-bitmap.ts";
import { DEFAULT_BAN_MS, DEFAULT_REPORTS_TO_BAN, DEFAULT_TRACKER_TTL_MS, MAX_PEERS_ANSWERED } from "./constants.ts";
import { DIGEST_RE } from "./layer-ref.ts";

/** One peer as agents see it. */
export interface PeerInfo {
  peerId: string;
  addrs: string[];
}

/** A peer holding (part of) a layer, as `GET /v1/peers` answers. */
export interface LayerHolder extends PeerInfo {
  /** Base64 chunk bitmap (see `chunk-bitmap.ts`) of the chunks it holds; absent: the whole layer. */
  chunks?: string;
}

/** A validated `POST /v1/announce` body. */
export interface Announcement extends PeerInfo {
  /** Layer digests the peer holds, at least partly. */
  layers: string[];
  /** Per layer of `layers`, a base64 bitmap of the chunks held; a layer without one is held whole. */
  chunks?: Record<string, string>;
}

const MAX_ADDRS = 32;
const MAX_LAYERS = 10_000;
const MAX_STRING = 512;

/** `v` when it is a non-empty string of at most `MAX_STRING` characters; else `BadRequestError` naming `what`. */
function stringField(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_STRING) throw new BadRequestError(`${what} must be a non-empty string of at most ${MAX_STRING} characters`);
  return v;
}

/** Parse an announce body (untrusted JSON); throws `BadRequestError`. */
export function parseAnnouncement(body: unknown): Announcement {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("announce: body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (v: unknown, what: string): string => stringField(v, `announce: ${what}`);
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
  let chunks: Record<string, string> | undefined;
  if (b.chunks !== undefined) {
    if (typeof b.chunks !== "object" || b.chunks === null || Array.isArray(b.chunks)) throw new BadRequestError("announce: chunks must be an object of layer digest to bitmap");
    const held = new Set(layers);
    chunks = {};
    for (const [layer, bits] of Object.entries(b.chunks as Record<string, unknown>)) {
      if (!held.has(layer)) throw new BadRequestError("announce: chunks names a layer missing from layers");
      if (typeof bits !== "string") throw new BadRequestError("announce: chunks values must be base64 bitmaps");
      decodeChunkBitmap(bits);
      chunks[layer] = bits;
    }
  }
  return { peerId, addrs, layers, ...(chunks ? { chunks } : {}) };
}

/** What one peer holds of one layer: its bitmap (decoded and as announced), or undefined for the whole layer. */
type Holding = { bits: Uint8Array; text: string } | undefined;

interface Entry {
  addrs: string[];
  layers: Map<string, Holding>;
  expires: number;
}

/** A validated `POST /v1/report` body: `reporter` got bytes failing their digest from `peerId`. */
export interface PeerReport {
  reporter: string;
  peerId: string;
  chunk: string;
}

/** Parse a report body (untrusted JSON); throws `BadRequestError`. */
export function parsePeerReport(body: unknown): PeerReport {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("report: body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (v: unknown, what: string): string => stringField(v, `report: ${what}`);
  const chunk = str(b.chunk, "chunk");
  if (!DIGEST_RE.test(chunk)) throw new BadRequestError("report: chunk must be a sha256:<hex> digest");
  const reporter = str(b.reporter, "reporter");
  const peerId = str(b.peerId, "peerId");
  if (reporter === peerId) throw new BadRequestError("report: a peer cannot report itself");
  return { reporter, peerId, chunk };
}

/** Settings of a `Tracker`. */
export interface TrackerInit {
  /** Entries expire this long after their last announce, ms. */
  ttlMs?: number;
  /** Distinct reporters after which a peer is no longer listed. Default 2. */
  reportsToBan?: number;
  /** How long a banned peer stays unlisted (its announces are ignored), ms. Default 1 h. */
  banMs?: number;
}

/**
 * In-memory tracker. An announce replaces the peer's previous entry (addrs,
 * layers and chunk bitmaps) and renews it for `ttlMs`; expired entries are
 * never returned and are swept lazily.
 */
export class Tracker {
  readonly #peers = new Map<string, Entry>();
  readonly #byLayer = new Map<string, Set<string>>();
  readonly #ttl: number;
  readonly #reportsToBan: number;
  readonly #banMs: number;
  /** Reporters per reported peer (kept while the ban window lasts). */
  readonly #reports = new Map<string, { reporters: Set<string>; since: number }>();
  /** Banned peers and until when. */
  readonly #banned = new Map<string, number>();
  readonly #now: () => number;
  #lastSweep = 0;

  constructor(components: { now?: () => number } = {}, init: TrackerInit = {}) {
    this.#now = components.now ?? Date.now;
    this.#ttl = init.ttlMs ?? DEFAULT_TRACKER_TTL_MS;
    this.#reportsToBan = init.reportsToBan ?? DEFAULT_REPORTS_TO_BAN;
    this.#banMs = init.banMs ?? DEFAULT_BAN_MS;
  }

  /**
   * Record that `reporter` got bad bytes from `peerId`. Once enough distinct
   * peers reported it, it is dropped and its announces are ignored for the
   * ban time. Returns true when the peer is banned now. (One reporter alone
   * cannot ban a peer: an agent already stops asking a peer that lied to it.)
   */
  report(r: PeerReport): boolean {
    if (this.isBanned(r.peerId)) return true;
    const now = this.#now();
    let e = this.#reports.get(r.peerId);
    if (!e || now - e.since > this.#banMs) this.#reports.set(r.peerId, (e = { reporters: new Set(), since: now }));
    e.reporters.add(r.reporter);
    if (e.reporters.size < this.#reportsToBan) return false;
    this.#reports.delete(r.peerId);
    this.#banned.set(r.peerId, now + this.#banMs);
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

  /** Record an announcement (ignored from a banned peer); returns the TTL granted, ms. */
  announce(a: Announcement): number {
    if (this.isBanned(a.peerId)) return this.#ttl;
    this.#remove(a.peerId);
    const layers = new Map<string, Holding>();
    for (const l of a.layers) {
      const text = a.chunks?.[l];
      layers.set(l, text === undefined ? undefined : { bits: decodeChunkBitmap(text), text });
    }
    const entry: Entry = { addrs: [...new Set(a.addrs)], layers, expires: this.#now() + this.#ttl };
    this.#peers.set(a.peerId, entry);
    for (const l of entry.layers.keys()) {
      let s = this.#byLayer.get(l);
      if (!s) this.#byLayer.set(l, (s = new Set()));
      s.add(a.peerId);
    }
    // Sweeping is O(peers): at most once per second (or per TTL, if shorter) on announces.
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
    const out: LayerHolder[] = [];
    for (const id of this.#byLayer.get(layer) ?? []) {
      const e = this.#peers.get(id);
      if (!e || e.expires <= now) continue;
      const held = e.layers.get(layer);
      if (chunk !== undefined && held && !bitmapHas(held.bits, chunk)) continue;
      out.push({ peerId: id, addrs: [...e.addrs], ...(held ? { chunks: held.text } : {}) });
    }
    // Fisher-Yates: spread load over holders, and bound the answer.
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out.slice(0, MAX_PEERS_ANSWERED);
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
    for (const l of e.layers.keys()) {
      const s = this.#byLayer.get(l);
      s?.delete(peerId);
      if (s?.size === 0) this.#byLayer.delete(l);
    }
  }
}
