import { ShoalError, untilAborted, AbortedError } from "@shoal/base";
import { createHash } from "node:crypto";
import { chunkMatches, gunzipMemberAsync, type Chunk, type LayerIndex } from "@shoal/blockindex";
import type { Logger } from "pino";

/** A lazy layer the agent reads: where it lives and its index. */
export interface RemoteLayer {
  /** Digest of the lazy blob. */
  digest: string;
  registry: string;
  repository: string;
  index: LayerIndex;
  /** Digest of the layer it was converted from (from its annotations), when recorded. */
  sourceDigest?: string;
}

/** A place chunks come from (the origin registry now; peers and supernodes later). */
export interface ChunkOrigin {
  /** Stable name used in metrics and status: `origin`, `peer`, `supernode`. */
  readonly name: string;
  /** The compressed bytes of `chunk` of `layer` (unverified). */
  fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array>;
  /** Blob bytes `[offset, offset + length)` of `layer` in one request (unverified), when the source can. */
  fetchRange?(layer: RemoteLayer, offset: number, length: number, opts: { signal: AbortSignal }): Promise<Uint8Array>;
  /** Asked only when every source before it failed, never as a hedge (the origin registry behind the swarm). */
  readonly lastResort?: boolean;
  /** False when this source surely cannot serve chunk `chunk` of `layer` (any of it, when undefined) now, e.g. no peer holds it: it is skipped. */
  canServe?(layer: RemoteLayer, chunk?: number): boolean;
  /** The bytes this source last returned for `chunk` failed verification: stop trusting whoever sent them. */
  reportBad?(layer: RemoteLayer, chunk: Chunk): void;
}

/** Largest run of adjacent chunks fetched in one range request. */
export const MAX_RUN_BYTES = 4 << 20;

/** The part of the chunk store the fetcher needs. */
export interface ChunkCache {
  has(digest: string): boolean;
  /** `verified`: the caller checked the bytes against the digest already (the cache need not hash them again). */
  put(digest: string, compressed: Uint8Array, raw: Uint8Array, opts?: { verified?: boolean }): Promise<void>;
  /** Store the compressed bytes only; the first `readRaw` inflates them. */
  putCompressed(digest: string, compressed: Uint8Array, rawSize: number, opts?: { verified?: boolean }): Promise<void>;
  readRaw(digest: string, offset: number, length: number): Promise<Buffer | undefined>;
  /** True when the chunk is stored inflated too (absent: the cache always is). */
  hasRaw?(digest: string): boolean;
  /** Store the inflated copy of a compressed-only chunk now; true when it is stored inflated afterwards. */
  inflateStored?(digest: string): Promise<boolean>;
}

/** What the fetcher reports to metrics. */
export interface FetchObserver {
  fetched(source: string, bytes: number, seconds: number): void;
  cacheHit(bytes: number): void;
  failed(source: string, reason: string): void;
  /** A fetch from `from` was slow, so `to` was asked too. */
  hedged?(from: string, to: string): void;
}

/** A chunk could not be had from any source in time. */
export class FetchError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_FETCH_FAILED", message, options);
  }
}

/** The abort reason of a hedged fetch whose other source answered first. */
class HedgeLostError extends AbortedError {
  constructor() {
    super("another source answered");
  }
}

/** Per-source totals, for `shoal status`. */
export type SourceTotals = Record<string, { chunks: number; bytes: number }>;

/** Weight of the newest sample in a source's latency average. */
const LATENCY_EWMA_WEIGHT = 0.2;
/** A source is hedged after this many times its average latency (and never before `hedgeMs`). */
const HEDGE_LATENCY_FACTOR = 3;

const hexOf = (d: Buffer) => `sha256:${d.toString("hex")}`;

/**
 * The agent's one way to get chunk data: from the local chunk store, else
 * from the origins in order, verified against the layer index, then stored.
 * Concurrent requests for one chunk share one fetch. Each fetch is bounded
 * by `timeoutMs`; a chunk failing its digest is fetched once more, then the
 * request fails with `FetchError`.
 */
export class Fetcher {
  readonly totals: SourceTotals = {};
  private readonly cache: ChunkCache;
  private readonly origins: ChunkOrigin[];
  private readonly logger: Logger;
  private readonly observer: FetchObserver | undefined;
  private readonly timeoutMs: number;
  private readonly hedgeMs: number;
  /** Fetches under way per chunk digest: the uncompressed bytes, or undefined when stored compressed only. */
  private readonly inflight = new Map<string, Promise<Buffer | undefined>>();
  /** On-demand fetches under way; background work yields to them. */
  foreground = 0;
  /** When the last on-demand fetch started (performance.now() ms): background work waits for a quiet spell. */
  lastForegroundAt = Number.NEGATIVE_INFINITY;
  /** Fetches that were hedged (a second source asked because the first was slow). */
  hedges = 0;
  /** Average latency of one chunk fetch per source, ms. */
  private readonly latencyMs = new Map<string, number>();

  constructor(components: { cache: ChunkCache; origins: ChunkOrigin[]; logger: Logger; observer?: FetchObserver }, init: { timeoutMs?: number; hedgeMs?: number } = {}) {
    this.cache = components.cache;
    this.origins = components.origins;
    this.logger = components.logger.child({ component: "fetcher" });
    this.observer = components.observer;
    this.timeoutMs = init.timeoutMs ?? 20_000;
    this.hedgeMs = init.hedgeMs ?? 1_000;
  }

  private count(source: string, bytes: number): void {
    const t = (this.totals[source] ??= { chunks: 0, bytes: 0 });
    t.chunks++;
    t.bytes += bytes;
  }

  /** True when chunk `i` of `layer` is in the local store inflated (ready for reads without inflating). */
  hasInflated(layer: RemoteLayer, i: number): boolean {
    const digest = hexOf(layer.index.chunk(i).digest);
    return this.cache.has(digest) && (this.cache.hasRaw?.(digest) ?? true);
  }

  /** Inflate a local compressed-only chunk into the store; true when it is stored inflated. */
  async inflateLocal(layer: RemoteLayer, i: number): Promise<boolean> {
    const digest = hexOf(layer.index.chunk(i).digest);
    if (!this.cache.has(digest)) return false;
    return this.cache.inflateStored ? this.cache.inflateStored(digest) : true;
  }

  /** True when chunk `i` of `layer` is in the local store. */
  has(layer: RemoteLayer, i: number): boolean {
    return this.cache.has(hexOf(layer.index.chunk(i).digest));
  }

  /**
   * Make chunk `i` of `layer` local (fetching it if needed) and return its
   * uncompressed bytes. `background` fetches do not count as on-demand.
   */
  async ensure(layer: RemoteLayer, i: number, opts: { signal?: AbortSignal; background?: boolean } = {}): Promise<Buffer> {
    const chunk = layer.index.chunk(i);
    const digest = hexOf(chunk.digest);
    if (this.cache.has(digest)) {
      const raw = await this.cache.readRaw(digest, 0, chunk.uncompressedLength);
      if (raw && raw.length === chunk.uncompressedLength) {
        this.observer?.cacheHit(raw.length);
        this.count("cache", raw.length);
        return raw;
      }
    }
    let p = this.inflight.get(digest);
    if (!p) {
      p = this.fetchAndStore(layer, chunk, digest, opts.background === true, true).finally(() => this.inflight.delete(digest));
      this.inflight.set(digest, p);
    }
    const raw = await untilAborted(p, opts.signal);
    if (raw) return raw;
    // It was stored compressed only by a background fetch: inflate it from the store.
    const stored = await this.cache.readRaw(digest, 0, chunk.uncompressedLength);
    if (stored && stored.length === chunk.uncompressedLength) return stored;
    return this.ensure(layer, i, opts);
  }

  /**
   * Make chunks `first..last` of `layer` local. Missing chunks are fetched in
   * runs of adjacent chunks, one range request per run (up to
   * `MAX_RUN_BYTES`), from the first origin that can serve ranges; each chunk
   * is verified on its own, and one that fails is fetched again alone.
   * Chunks are stored inflated when `inflate` (default: unless `background`),
   * else compressed only, inflated on their first read.
   */
  async ensureRange(layer: RemoteLayer, first: number, last: number, opts: { signal?: AbortSignal; background?: boolean; inflate?: boolean; maxRunBytes?: number } = {}): Promise<void> {
    const maxRun = opts.maxRunBytes ?? MAX_RUN_BYTES;
    const background = opts.background === true;
    const inflate = opts.inflate ?? !background;
    const waits: Promise<unknown>[] = [];
    let run: number[] = [];
    let runBytes = 0;
    const flush = () => {
      if (run.length === 0) return;
      const ids = run;
      run = [];
      runBytes = 0;
      const fetched = ids.length === 1 ? Promise.resolve(new Map<number, Buffer | undefined>()) : this.fetchRun(layer, ids, background, inflate);
      fetched.catch(() => {});
      for (const i of ids) {
        const digest = hexOf(layer.index.chunk(i).digest);
        const p = fetched.then((m) => (m.has(i) ? m.get(i) : this.fetchAndStore(layer, layer.index.chunk(i), digest, background, inflate)));
        const tracked = p.finally(() => this.inflight.delete(digest));
        tracked.catch(() => {});
        this.inflight.set(digest, tracked);
        waits.push(tracked);
      }
    };
    for (let i = first; i <= last; i++) {
      const chunk = layer.index.chunk(i);
      const digest = hexOf(chunk.digest);
      const pending = this.inflight.get(digest);
      if (this.cache.has(digest) || pending) {
        flush();
        if (pending) waits.push(pending);
        continue;
      }
      if (runBytes + chunk.length > maxRun) flush();
      run.push(i);
      runBytes += chunk.length;
    }
    flush();
    await untilAborted(Promise.all(waits), opts.signal);
  }

  /** Fetch adjacent chunks `ids` in one request; resolves the verified, stored ones (uncompressed, or undefined when not `inflate`). */
  private async fetchRun(layer: RemoteLayer, ids: number[], background: boolean, inflate: boolean): Promise<Map<number, Buffer | undefined>> {
    const out = new Map<number, Buffer | undefined>();
    // The first source that can serve every chunk of the run takes it if it
    // serves ranges; otherwise the chunks go one by one through every source in order.
    const origin = this.origins.find((o) => !o.canServe || ids.every((i) => o.canServe!(layer, i)));
    if (!origin?.fetchRange) return out;
    const chunks = ids.map((i) => layer.index.chunk(i));
    const start = chunks[0]!.offset;
    const end = chunks.at(-1)!.offset + chunks.at(-1)!.length;
    if (!background) {
      this.foreground++;
      this.lastForegroundAt = performance.now();
    }
    const signal = AbortSignal.timeout(this.timeoutMs);
    const started = performance.now();
    try {
      const bytes = await origin.fetchRange!(layer, start, end - start, { signal });
      const seconds = (performance.now() - started) / 1000;
      await Promise.all(chunks.map(async (chunk) => {
        const piece = bytes.subarray(chunk.offset - start, chunk.offset - start + chunk.length);
        if (!chunkMatches(chunk, piece)) {
          origin.reportBad?.(layer, chunk);
          this.observer?.failed(origin.name, "digest");
          this.logger.error({ layer: layer.digest, chunk: chunk.index, source: origin.name }, "chunk of a run failed its digest");
          return;
        }
        const raw = await this.store(layer, chunk, piece, inflate);
        this.count(origin.name, piece.length);
        out.set(chunk.index, raw);
      }));
      this.observer?.fetched(origin.name, end - start, seconds);
      this.logger.debug({ layer: layer.digest, first: ids[0], last: ids.at(-1), source: origin.name, bytes: end - start, background }, "chunk run fetched");
    } catch (err) {
      this.observer?.failed(origin.name, signal.aborted ? "timeout" : "error");
      this.logger.warn({ layer: layer.digest, first: ids[0], last: ids.at(-1), err: (err as Error).message }, "chunk run fetch failed; chunks are fetched one by one");
    } finally {
      if (!background) this.foreground--;
    }
    return out;
  }

  /**
   * Uncompressed bytes `[offset, offset + length)` of `layer`'s tar stream,
   * from the store where present, fetching the missing chunks.
   */
  async read(layer: RemoteLayer, offset: number, length: number, opts: { signal?: AbortSignal } = {}): Promise<Buffer> {
    const range = layer.index.chunksForRange(offset, length);
    if (!range) return Buffer.alloc(0);
    // A read over several chunks fetches the missing ones in runs; what it then
    // reads back from the store was fetched now, not a cache hit.
    let fresh = false;
    if (range.last > range.first) {
      for (let i = range.first; i <= range.last && !fresh; i++) fresh = !this.has(layer, i);
      if (fresh) await this.ensureRange(layer, range.first, range.last, opts);
    }
    const parts = await Promise.all(
      Array.from({ length: range.last - range.first + 1 }, async (_, k) => {
        const i = range.first + k;
        const chunk = layer.index.chunk(i);
        const from = Math.max(offset, chunk.uncompressedOffset) - chunk.uncompressedOffset;
        const to = Math.min(offset + length, chunk.uncompressedOffset + chunk.uncompressedLength) - chunk.uncompressedOffset;
        const digest = hexOf(chunk.digest);
        if (this.cache.has(digest)) {
          const part = await this.cache.readRaw(digest, from, to - from);
          if (part && part.length === to - from) {
            if (!fresh) {
              this.observer?.cacheHit(part.length);
              this.count("cache", part.length);
            }
            return part;
          }
        }
        const raw = await this.ensure(layer, i, opts);
        return raw.subarray(from, to);
      }),
    );
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /**
   * How long to wait on `origin` before asking the next source too: the
   * configured hedge delay, or a few times the source's average latency when
   * that is longer. When every source is slow alike (a loaded host, a busy
   * swarm), hedging would only double the load; a source slow against its
   * own record is what hedging is for.
   */
  private hedgeDelay(origin: ChunkOrigin): number {
    return Math.max(this.hedgeMs, HEDGE_LATENCY_FACTOR * (this.latencyMs.get(origin.name) ?? 0));
  }

  private observeLatency(origin: ChunkOrigin, ms: number): void {
    const avg = this.latencyMs.get(origin.name);
    this.latencyMs.set(origin.name, avg === undefined ? ms : avg + LATENCY_EWMA_WEIGHT * (ms - avg));
  }

  /**
   * One chunk through the sources in order. A source slower than its hedge
   * delay gets company: the next source starts too, and the first verified
   * answer wins. A source whose bytes fail the digest is told (`reportBad`)
   * and asked once more, then the next one is tried.
   */
  private async fetchAndStore(layer: RemoteLayer, chunk: Chunk, digest: string, background: boolean, inflate: boolean): Promise<Buffer | undefined> {
    if (!background) {
      this.foreground++;
      this.lastForegroundAt = performance.now();
    }
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const candidates = this.origins.filter((o) => !o.canServe || o.canServe(layer, chunk.index));
    const errors: string[] = [];
    try {
      const bytes = await new Promise<{ bytes: Uint8Array; origin: ChunkOrigin; seconds: number }>((resolve, reject) => {
        let next = 0;
        let running = 0;
        let settled = false;
        const controllers: AbortController[] = [];
        const finish = () => {
          if (!settled && running === 0 && next >= candidates.length) {
            settled = true;
            reject(new FetchError(`chunk ${chunk.index} of ${layer.digest} unavailable: ${errors.join("; ") || "no sources"}`));
          }
        };
        const launch = (): void => {
          if (settled || next >= candidates.length) return finish();
          const origin = candidates[next++]!;
          const ctl = new AbortController();
          controllers.push(ctl);
          running++;
          // Hedge onto the next source, but never onto the last resort (the
          // origin behind the swarm) just for being slow, and ask the last
          // resort only once every other source has failed: the origin then
          // sees each chunk about once.
          const lastResortNext = () => next < candidates.length && candidates[next]!.lastResort === true;
          const hedge = setTimeout(() => {
            if (settled || next >= candidates.length || lastResortNext()) return;
            this.hedges++;
            this.observer?.hedged?.(origin.name, candidates[next]!.name);
            launch();
          }, this.hedgeDelay(origin));
          const failed = () => {
            clearTimeout(hedge);
            running--;
            if (settled || (running > 0 && lastResortNext())) return;
            launch();
          };
          this.attempt(layer, chunk, origin, AbortSignal.any([deadline, ctl.signal]), errors).then(
            (got) => {
              if (!got) return failed();
              clearTimeout(hedge);
              running--;
              if (settled) return;
              settled = true;
              for (const c of controllers) c.abort(new HedgeLostError());
              resolve(got);
            },
            failed,
          );
        };
        launch();
      });
      const raw = await this.store(layer, chunk, bytes.bytes, inflate);
      this.observer?.fetched(bytes.origin.name, bytes.bytes.length, bytes.seconds);
      this.count(bytes.origin.name, bytes.bytes.length);
      this.logger.debug({ layer: layer.digest, chunk: chunk.index, source: bytes.origin.name, bytes: bytes.bytes.length, background }, "chunk fetched");
      return raw;
    } finally {
      if (!background) this.foreground--;
    }
  }

  /** Store verified `compressed` bytes of `chunk`, inflated too when `inflate` (then returns them). */
  private async store(layer: RemoteLayer, chunk: Chunk, compressed: Uint8Array, inflate: boolean): Promise<Buffer | undefined> {
    const digest = hexOf(chunk.digest);
    if (!inflate) {
      await this.cache.putCompressed(digest, compressed, chunk.uncompressedLength, { verified: true });
      return undefined;
    }
    const raw = await gunzipMemberAsync(compressed, chunk.uncompressedLength, { layer: layer.digest, blobOffset: chunk.offset });
    await this.cache.put(digest, compressed, raw, { verified: true });
    return raw;
  }

  /** Up to two tries at one source; the verified bytes, or undefined (reasons appended to `errors`). */
  private async attempt(layer: RemoteLayer, chunk: Chunk, origin: ChunkOrigin, signal: AbortSignal, errors: string[]): Promise<{ bytes: Uint8Array; origin: ChunkOrigin; seconds: number } | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const started = performance.now();
      let bytes: Uint8Array;
      try {
        bytes = await origin.fetch(layer, chunk, { signal });
      } catch (err) {
        if (signal.aborted && signal.reason instanceof HedgeLostError) return undefined; // not a failure of this source
        const timedOut = signal.aborted;
        const reason = timedOut ? `timed out after ${this.timeoutMs} ms` : (err as Error).message;
        errors.push(`${origin.name}: ${reason}`);
        this.observer?.failed(origin.name, timedOut ? "timeout" : "error");
        this.logger.warn({ layer: layer.digest, chunk: chunk.index, source: origin.name, err: reason }, "chunk fetch failed");
        return undefined; // clients retry already; the next source gets a turn
      }
      if (chunkMatches(chunk, bytes)) {
        const ms = performance.now() - started;
        this.observeLatency(origin, ms);
        return { bytes, origin, seconds: ms / 1000 };
      }
      const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      errors.push(`${origin.name}: digest mismatch (got ${actual})`);
      origin.reportBad?.(layer, chunk);
      this.observer?.failed(origin.name, "digest");
      this.logger.error({ layer: layer.digest, chunk: chunk.index, source: origin.name, expected: `sha256:${chunk.digest.toString("hex")}`, actual, attempt }, "chunk failed its digest");
    }
    return undefined;
  }

}
