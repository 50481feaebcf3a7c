/**
 * The read path's one way to get chunk data: from the local chunk cache,
 * else from the sources in order, verified against the layer index, then
 * stored.
 */
import { DemandActivity, digestOf, ShoalError, untilAborted } from "@shoal/base";
import { chunkDigest, chunkMatches, inflateChunk, type Chunk } from "@shoal/blockindex";
import type { Logger } from "pino";
import type { ChunkCache, InflateOptions } from "./chunk-cache.ts";
import type { ChunkSource } from "./chunk-source.ts";
import { allAborted, Flights } from "./flights.ts";
import { hedgedRace, HedgeLostError } from "./race.ts";
import type { RemoteLayer } from "./remote-layer.ts";
import { loadWindow } from "./seekable.ts";

/** Largest run of adjacent chunks fetched in one request, bytes. */
export const MAX_RUN_BYTES = 4 << 20;

/**
 * The agent's `missWindowBytes`: a read that misses fetches the aligned 256
 * KiB of the layer around it (the small files beside it come along), however
 * small the chunks. Chunk size then sets how precisely a trace prefetches,
 * not how many round trips a cold start takes. A `Fetcher` without it
 * fetches only the chunks read.
 */
export const MISS_WINDOW_BYTES = 256 * 1024;

/** Chunks served before they are stored, at most; past it a fetch waits for its chunk's write. */
const MAX_LANDING = 64;

/**
 * How long a chunk whose deadline passed (its sources hung) fails again at
 * once: the kernel reads a page again right after a failed readahead, and
 * that read must not wait a second deadline. Short, so reads succeed soon
 * after an outage ends.
 */
export const FAILURE_MEMORY_MS = 1000;

/** What the fetcher reports to metrics. */
export interface FetchObserver {
  /** One request answered by `source`: `bytes` of verified chunks in `seconds`. */
  fetched(source: string, bytes: number, seconds: number): void;
  cacheHit(bytes: number): void;
  /** A fetch from `source` failed; `detail` says how in words (never credentials). */
  failed(source: string, reason: "error" | "timeout" | "digest", detail: string): void;
  /** A fetch from `from` was slow, so `to` was asked too. */
  hedged?(from: string, to: string): void;
}

/** A chunk could not be had from any source in time. */
export class FetchError extends ShoalError {
  /** The chunk's deadline (`timeoutMs`) passed: its sources hung rather than failed. */
  readonly timedOut: boolean;
  constructor(message: string, options?: { cause?: unknown; timedOut?: boolean }) {
    super("SHOAL_ERR_FETCH_FAILED", message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.timedOut = options?.timedOut === true;
  }
}

/** Per-source totals, for `shoal status`. */
export type SourceTotals = Record<string, { chunks: number; bytes: number }>;

/** What `Fetcher.stats` answers. */
export interface FetchStats {
  sources: SourceTotals;
  /** Fetches hedged onto a second source because the first was slow. */
  hedges: number;
}

/** Options of one read or ensure. */
export interface FetchOptions {
  /** The caller's: aborting it stops its wait, and the fetch too once no other caller waits for it. */
  signal?: AbortSignal;
  /** Background work (the prefetcher): does not count as on-demand activity. */
  background?: boolean;
  /** Background work for reads expected soon (the startup chunks): sources do not put it behind others' reads. */
  startup?: boolean;
}

/** Whom a fetch is for: a reader waiting now; reads expected soon (startup chunks); the background stream. */
type Priority = "demand" | "startup" | "background";

const priorityOf = (opts: FetchOptions): Priority => (opts.background !== true ? "demand" : opts.startup === true ? "startup" : "background");

/** Weight of the newest sample in a source's latency average. */
const LATENCY_EWMA_WEIGHT = 0.2;
/** A source is hedged after this many times its average latency (and never before `hedgeMs`). */
const HEDGE_LATENCY_FACTOR = 3;
/** The hedge delay's floor when none is given (`hedgeMs`), ms. */
export const DEFAULT_HEDGE_MS = 1_000;

/** A source's average latency of one chunk, `averageMs` (undefined: none yet), after a fetch that took `ms`. */
export function latencyAverage(averageMs: number | undefined, ms: number): number {
  return averageMs === undefined ? ms : averageMs + LATENCY_EWMA_WEIGHT * (ms - averageMs);
}

/**
 * How long to wait on a source before asking the next source too: `hedgeMs`,
 * or a few times the source's average latency when that is longer. When
 * every source is slow alike (a loaded host, a busy swarm), hedging would
 * only double the load; a source slow against its own record is what
 * hedging is for.
 */
export function hedgeDelayMs(hedgeMs: number, averageMs: number | undefined): number {
  return Math.max(hedgeMs, HEDGE_LATENCY_FACTOR * (averageMs ?? 0));
}

/**
 * Concurrent requests for one chunk share one fetch. Each chunk has one
 * deadline (`timeoutMs`) from when it was first asked for, across every
 * source, run and retry; the caller's `AbortSignal` reaches every source,
 * combined with it. A chunk failing its digest is asked of the same source
 * once more, then of the next; when none serves it the request fails with
 * `FetchError`. On-demand fetches mark `demand`, which background work waits on.
 */
export class Fetcher {
  /** On-demand activity, for background work to yield to. */
  readonly demand: DemandActivity;
  private readonly cache: ChunkCache;
  private readonly sources: readonly ChunkSource[];
  private readonly logger: Logger;
  private readonly observer: FetchObserver | undefined;
  private readonly timeoutMs: number;
  private readonly hedgeMs: number;
  private readonly missWindowBytes: number;
  /** Fetches under way per chunk digest: the uncompressed bytes, or undefined when stored compressed only. */
  private readonly flights = new Flights<Buffer | undefined>();
  private readonly totals: SourceTotals = {};
  private hedges = 0;
  /** Average latency of one chunk fetch per source, ms. */
  private readonly latencyMs = new Map<string, number>();
  /**
   * Verified, inflated chunks handed to their readers while the store still
   * writes them (a durable write is several disk syncs, which no reader
   * should wait for); reads find them here until the write has settled.
   */
  private readonly landing = new Map<string, Buffer>();
  /** Layers whose index was found forged or wrong: every read fails with the finding. */
  private readonly condemned = new Map<string, Error>();
  /** Their writes, for `drain`. */
  private readonly writes = new Set<Promise<unknown>>();
  /** Chunks whose last on-demand fetch timed out, by digest: when, and why. */
  private readonly failures = new Map<string, { at: number; err: FetchError }>();

  constructor(
    components: { cache: ChunkCache; sources: readonly ChunkSource[]; logger: Logger; observer?: FetchObserver; demand?: DemandActivity },
    init: { timeoutMs?: number; hedgeMs?: number; missWindowBytes?: number } = {},
  ) {
    this.cache = components.cache;
    this.sources = components.sources;
    this.logger = components.logger.child({ component: "fetcher" });
    this.observer = components.observer;
    this.demand = components.demand ?? new DemandActivity();
    this.timeoutMs = init.timeoutMs ?? 20_000;
    this.hedgeMs = init.hedgeMs ?? DEFAULT_HEDGE_MS;
    this.missWindowBytes = init.missWindowBytes ?? 0;
  }

  /**
   * The chunks a miss at uncompressed byte `at` of `layer` fetches together:
   * those of the aligned `missWindowBytes` holding it (just its own when
   * chunks are that large, or the window is 0).
   */
  missWindow(layer: RemoteLayer, at: number): { first: number; last: number } {
    const w = this.missWindowBytes;
    const own = layer.index.chunksForRange(at, 1)!;
    if (w <= 0) return own;
    const start = at - (at % w);
    const range = layer.index.chunksForRange(start, Math.min(w, layer.index.uncompressedSize - start))!;
    return { first: Math.min(range.first, own.first), last: Math.max(range.last, own.last) };
  }

  /** Resolves once every chunk served before it was stored has been written (or failed to be): before the store closes. */
  async drain(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  /** Bytes and chunks obtained per source (`cache` for local hits), and hedges: a copy. */
  stats(): FetchStats {
    return { sources: structuredClone(this.totals), hedges: this.hedges };
  }

  /** True when chunk `i` of `layer` is in the local store (or being written to it). */
  has(layer: RemoteLayer, i: number): boolean {
    return this.isLocal(chunkDigest(layer.index.chunk(i)));
  }

  /** In the store, or served and still being written to it. */
  private isLocal(digest: string): boolean {
    return this.cache.has(digest) || this.landing.has(digest);
  }

  /** True when chunk `i` of `layer` is in the local store inflated (ready for reads without inflating). */
  hasInflated(layer: RemoteLayer, i: number): boolean {
    const digest = chunkDigest(layer.index.chunk(i));
    return this.cache.has(digest) && this.cache.hasRaw(digest);
  }

  /** Inflate a local compressed-only chunk into the store; true when it is stored inflated. */
  inflateLocal(layer: RemoteLayer, i: number): Promise<boolean> {
    const chunk = layer.index.chunk(i);
    return this.cache.inflateStored(chunkDigest(chunk), this.inflaterOf(layer, chunk));
  }

  /** The store's inflater for `chunk`: none for a gzip member (the store's own), the checkpoint's for a span (its window loaded first). */
  private inflaterOf(layer: RemoteLayer, chunk: Chunk): InflateOptions {
    if (!chunk.resume) return {};
    return { inflate: async (z) => {
      await this.windowOf(layer, chunk);
      return inflateChunk(chunk, z, { layer: layer.digest });
    } };
  }

  /** Load a span's checkpoint window before it is inflated (from the layer's loader, else from the data before it). */
  private windowOf(layer: RemoteLayer, chunk: Chunk): Promise<void> {
    return loadWindow(layer, chunk, (offset, length) => this.read(layer, offset, length));
  }

  /** From now on every read of layer `digest` fails with `err` (its index was found forged or wrong; see `auditSeekableLayer`). */
  condemn(digest: string, err: Error): void {
    this.condemned.set(digest, err);
  }

  /** Make chunk `i` of `layer` local (fetching it if needed) and return its uncompressed bytes. */
  async ensure(layer: RemoteLayer, i: number, opts: FetchOptions = {}): Promise<Buffer> {
    const chunk = layer.index.chunk(i);
    const digest = chunkDigest(chunk);
    for (;;) {
      const landed = this.landing.get(digest);
      if (landed) {
        this.hit(landed.length);
        return landed;
      }
      if (this.cache.has(digest)) {
        const raw = await this.cache.readRaw(digest, 0, chunk.uncompressedLength, this.inflaterOf(layer, chunk));
        if (raw && raw.length === chunk.uncompressedLength) {
          this.hit(raw.length);
          return raw;
        }
      }
      const raw = await this.flights.join(digest, (signal) => this.fetchOne(layer, chunk, priorityOf(opts), true, this.deadline(signal)), opts.signal);
      if (raw) return raw;
      // A background fetch stored it compressed only: read it (inflating) from the store.
      const stored = await this.cache.readRaw(digest, 0, chunk.uncompressedLength, this.inflaterOf(layer, chunk));
      if (stored && stored.length === chunk.uncompressedLength) return stored;
    }
  }

  /**
   * Make chunks `first..last` of `layer` local. Missing chunks are fetched in
   * runs of adjacent chunks, one request per run (up to `maxRunBytes`), from
   * the first source that can serve the whole run; each chunk is verified on
   * its own, and one that fails (or is missing from the run) is fetched
   * alone through every source. Chunks are stored inflated when `inflate`
   * (default: unless `background`), else compressed only.
   */
  async ensureRange(layer: RemoteLayer, first: number, last: number, opts: FetchOptions & { inflate?: boolean; maxRunBytes?: number } = {}): Promise<void> {
    const maxRun = opts.maxRunBytes ?? MAX_RUN_BYTES;
    const priority = priorityOf(opts);
    const inflate = opts.inflate ?? priority === "demand";
    const waits: Promise<unknown>[] = [];
    let run: number[] = [];
    let bytes = 0;
    const flush = () => {
      if (run.length > 0) waits.push(...this.startRun(layer, run, priority, inflate, opts.signal));
      run = [];
      bytes = 0;
    };
    for (let i = first; i <= last; i++) {
      const chunk = layer.index.chunk(i);
      const digest = chunkDigest(chunk);
      if (this.isLocal(digest)) {
        flush();
        continue;
      }
      if (this.flights.has(digest)) {
        flush();
        waits.push(this.flights.join(digest, () => Promise.resolve(undefined), opts.signal));
        continue;
      }
      if (bytes + chunk.length > maxRun) flush();
      run.push(i);
      bytes += chunk.length;
    }
    flush();
    await Promise.all(waits);
  }

  /**
   * Uncompressed bytes `[offset, offset + length)` of `layer`'s tar stream,
   * from the store where present, fetching the missing chunks (in runs when
   * the read spans several).
   */
  async read(layer: RemoteLayer, offset: number, length: number, opts: FetchOptions = {}): Promise<Buffer> {
    const condemned = this.condemned.get(layer.digest);
    if (condemned) throw condemned;
    if (opts.background !== true) this.demand.touch();
    const range = layer.index.chunksForRange(offset, length);
    if (!range) return Buffer.alloc(0);
    // a span's window travels apart from it: ask for it while the span is fetched, not after (none for a span stored inflated)
    if (layer.windows) {
      for (let i = range.first; i <= range.last; i++) if (!this.hasInflated(layer, i)) void this.windowOf(layer, layer.index.chunk(i)).catch(() => undefined);
    }
    // reads pass here for every FUSE read: look only while some chunk has failed
    if (this.failures.size > 0) {
      for (let i = range.first; i <= range.last; i++) {
        const failed = this.recentFailure(chunkDigest(layer.index.chunk(i)));
        if (failed) throw failed;
      }
    }
    try {
      return await this.readChunks(layer, range, offset, length, opts);
    } catch (err) {
      // only a deadline that passed: a source that refuses fails fast anyway, and may be back at once
      if (err instanceof FetchError && err.timedOut) {
        if (this.failures.size > 10_000) this.failures.clear();
        for (let i = range.first; i <= range.last; i++) {
          const digest = chunkDigest(layer.index.chunk(i));
          if (!this.isLocal(digest)) this.failures.set(digest, { at: performance.now(), err });
        }
      }
      throw err;
    }
  }

  /** The error of the fetch of chunk `digest` if it failed less than `FAILURE_MEMORY_MS` ago (and it is not local since). */
  private recentFailure(digest: string): FetchError | undefined {
    const f = this.failures.get(digest);
    if (!f) return undefined;
    if (performance.now() - f.at < FAILURE_MEMORY_MS && !this.isLocal(digest)) return f.err;
    this.failures.delete(digest);
    return undefined;
  }

  private async readChunks(layer: RemoteLayer, range: { first: number; last: number }, offset: number, length: number, opts: FetchOptions): Promise<Buffer> {
    // a demand miss brings its window in one request, the read joining its own chunks' flights
    if (opts.background !== true) {
      const own = chunkDigest(layer.index.chunk(range.first));
      if (!this.isLocal(own) && !this.flights.has(own)) {
        const w = this.missWindow(layer, offset);
        if (w.first < range.first || w.last > range.last) {
          this.ensureRange(layer, Math.min(w.first, range.first), Math.max(w.last, range.last), opts).catch(() => undefined);
        }
      }
    }
    // What a read over several chunks then reads back from the store was fetched now, not a cache hit.
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
        const digest = chunkDigest(chunk);
        const landed = this.landing.get(digest);
        if (landed) {
          if (!fresh) this.hit(to - from);
          return landed.subarray(from, to);
        }
        if (this.cache.has(digest)) {
          const part = await this.cache.readRaw(digest, from, to - from, this.inflaterOf(layer, chunk));
          if (part && part.length === to - from) {
            if (!fresh) this.hit(part.length);
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
   * Start one flight per chunk of `ids` (adjacent, missing); the run is
   * fetched in one request once every flight is started, and its signal
   * aborts when every chunk's askers are gone. Each chunk's flight ends as
   * soon as that chunk has arrived and been verified (a streaming source
   * delivers chunks before the run is complete); one the run did not bring
   * is fetched alone.
   */
  private startRun(layer: RemoteLayer, ids: number[], priority: Priority, inflate: boolean, caller: AbortSignal | undefined): Promise<unknown>[] {
    const settle = new Map<number, (got: { raw: Buffer | undefined } | undefined) => void>();
    const arrivals = new Map(ids.map((i) => [i, new Promise<{ raw: Buffer | undefined } | undefined>((resolve) => settle.set(i, resolve))]));
    const signals: AbortSignal[] = [];
    const waits = ids.map((i) => {
      const chunk = layer.index.chunk(i);
      return this.flights.join(chunkDigest(chunk), async (signal) => {
        signals.push(signal);
        const deadline = this.deadline(signal);
        const got = await untilAborted(arrivals.get(i)!, deadline).catch((err: unknown) => {
          throw deadline.aborted && !signal.aborted ? this.timedOut(chunk, layer, err) : err;
        });
        return got ? got.raw : this.fetchOne(layer, chunk, priority, inflate, deadline);
      }, caller);
    });
    const missing = () => {
      for (const s of settle.values()) s(undefined);
    };
    if (ids.length === 1) missing();
    else void this.fetchRun(layer, ids, priority, inflate, this.deadline(allAborted(signals)), (i, raw) => settle.get(i)?.({ raw })).finally(missing);
    return waits;
  }

  /** The error of a chunk whose deadline passed. */
  private timedOut(chunk: Chunk, layer: RemoteLayer, cause: unknown, errors: string[] = []): FetchError {
    return new FetchError(`chunk ${chunk.index} of ${layer.digest} unavailable: timed out after ${this.timeoutMs} ms${errors.length ? ` (${errors.join("; ")})` : ""}`, { cause, timedOut: true });
  }

  /** `signal` combined with a fresh deadline of `timeoutMs`. */
  private deadline(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, AbortSignal.timeout(this.timeoutMs)]);
  }

  /**
   * Fetch adjacent chunks `ids` in one request; each verified chunk is
   * stored and handed to `arrived` (uncompressed, or undefined when not
   * `inflate`) as soon as its bytes are in, in order. Never rejects (`take` neither).
   */
  private async fetchRun(layer: RemoteLayer, ids: number[], priority: Priority, inflate: boolean, signal: AbortSignal, arrived: (i: number, raw: Buffer | undefined) => void): Promise<void> {
    const source = this.sources.find((s) => !s.canServe || ids.every((i) => s.canServe!(layer, i)));
    if (!source) return;
    const first = ids[0]!;
    const last = ids.at(-1)!;
    const end = priority !== "demand" ? undefined : this.demand.begin();
    const started = performance.now();
    /** Chunks whose bytes were looked at (once each: a second look at the same bytes tells nothing new). */
    const seen = new Set<number>();
    let bytes = 0;
    const take = async (k: number, piece: Uint8Array | undefined): Promise<void> => {
      const i = ids[k];
      if (i === undefined || seen.has(k)) return;
      seen.add(k);
      const chunk = layer.index.chunk(i);
      if (!piece || !chunkMatches(chunk, piece)) {
        source.reportBad?.(layer, i);
        this.observer?.failed(source.name, "digest", `chunk ${i} of layer ${layer.digest} failed its digest`);
        this.logger.error({ layer: layer.digest, chunk: i, source: source.name }, "chunk of a run failed its digest");
        return;
      }
      try {
        arrived(i, await this.store(layer, chunk, piece, inflate));
      } catch (err) {
        this.logger.warn({ layer: layer.digest, chunk: i, err: (err as Error).message }, "a chunk of a run could not be stored; it is fetched alone");
        return;
      }
      this.count(source.name, piece.length);
      bytes += piece.length;
    };
    const streamed: Promise<void>[] = [];
    try {
      const pieces = await source.fetchChunks(layer, first, last, { signal, background: priority === "background", onChunk: (k, piece) => streamed.push(take(k, piece)) });
      await Promise.all(streamed);
      await Promise.all(ids.map((_, k) => take(k, pieces[k])));
      const seconds = (performance.now() - started) / 1000;
      this.observer?.fetched(source.name, bytes, seconds);
      this.logger.debug({ layer: layer.digest, first, last, source: source.name, bytes, background: priority !== "demand", priority, fetchMs: Math.round(seconds * 1000) }, "chunk run fetched");
    } catch (err) {
      await Promise.all(streamed);
      this.observer?.failed(source.name, signal.aborted ? "timeout" : "error", `chunks ${first}-${last} of layer ${layer.digest}: ${(err as Error).message}`);
      this.logger.warn({ layer: layer.digest, first, last, err: (err as Error).message }, "chunk run fetch failed; chunks are fetched one by one");
    } finally {
      end?.();
    }
  }

  /**
   * One chunk through the sources in a hedged race (`hedgedRace`): a source
   * slower than its hedge delay gets company, the first verified answer
   * wins; the last resort is asked only when the others failed.
   */
  private async fetchOne(layer: RemoteLayer, chunk: Chunk, priority: Priority, inflate: boolean, signal: AbortSignal): Promise<Buffer | undefined> {
    const end = priority !== "demand" ? undefined : this.demand.begin();
    const errors: string[] = [];
    try {
      const entrants = this.sources.filter((s) => !s.canServe || s.canServe(layer, chunk.index));
      const won = await hedgedRace({
        entrants,
        signal,
        attempt: (s, sig) => this.attempt(layer, chunk, s, sig, errors, priority === "background"),
        hedgeAfterMs: (s) => this.hedgeDelay(s),
        isLastResort: (s) => s.lastResort === true,
        onHedge: (from, to) => {
          this.hedges++;
          this.observer?.hedged?.(from.name, to.name);
        },
      }).catch((err: unknown) => {
        if (signal.aborted && signal.reason instanceof Error && signal.reason.name === "TimeoutError") throw this.timedOut(chunk, layer, err, errors);
        throw err;
      });
      if (!won) throw new FetchError(`chunk ${chunk.index} of ${layer.digest} unavailable: ${errors.join("; ") || "no sources"}`);
      const raw = await this.store(layer, chunk, won.value.bytes, inflate);
      this.observer?.fetched(won.winner.name, won.value.bytes.length, won.value.seconds);
      this.count(won.winner.name, won.value.bytes.length);
      this.logger.debug({ layer: layer.digest, chunk: chunk.index, source: won.winner.name, bytes: won.value.bytes.length, background: priority !== "demand", priority, fetchMs: Math.round(won.value.seconds * 1000) }, "chunk fetched");
      return raw;
    } finally {
      end?.();
    }
  }

  /** Up to two tries at one source; the verified bytes, or undefined (reasons appended to `errors`). */
  private async attempt(layer: RemoteLayer, chunk: Chunk, source: ChunkSource, signal: AbortSignal, errors: string[], background: boolean): Promise<{ bytes: Uint8Array; seconds: number } | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const started = performance.now();
      let bytes: Uint8Array | undefined;
      try {
        [bytes] = await source.fetchChunks(layer, chunk.index, chunk.index, { signal, background });
      } catch (err) {
        if (signal.aborted && signal.reason instanceof HedgeLostError) return undefined; // not a failure of this source
        const timedOut = signal.aborted;
        const reason = timedOut ? `timed out after ${this.timeoutMs} ms` : (err as Error).message;
        errors.push(`${source.name}: ${reason}`);
        this.observer?.failed(source.name, timedOut ? "timeout" : "error", `chunk ${chunk.index} of layer ${layer.digest}: ${reason}`);
        this.logger.warn({ layer: layer.digest, chunk: chunk.index, source: source.name, err: reason }, "chunk fetch failed");
        return undefined; // clients retry already; the next source gets a turn
      }
      if (bytes && chunkMatches(chunk, bytes)) {
        const ms = performance.now() - started;
        this.observeLatency(source, ms);
        return { bytes, seconds: ms / 1000 };
      }
      const actual = bytes ? digestOf(bytes) : "nothing";
      errors.push(`${source.name}: digest mismatch (got ${actual})`);
      source.reportBad?.(layer, chunk.index);
      this.observer?.failed(source.name, "digest", `chunk ${chunk.index} of layer ${layer.digest}: digest mismatch`);
      this.logger.error({ layer: layer.digest, chunk: chunk.index, source: source.name, expected: chunkDigest(chunk), actual, attempt }, "chunk failed its digest");
    }
    return undefined;
  }

  /** How long to wait on `source` before asking the next source too (`hedgeDelayMs`). */
  private hedgeDelay(source: ChunkSource): number {
    return hedgeDelayMs(this.hedgeMs, this.latencyMs.get(source.name));
  }

  private observeLatency(source: ChunkSource, ms: number): void {
    this.latencyMs.set(source.name, latencyAverage(this.latencyMs.get(source.name), ms));
  }

  /** Store verified `compressed` bytes of `chunk`, inflated too when `inflate` (then returns them). */
  private async store(layer: RemoteLayer, chunk: Chunk, compressed: Uint8Array, inflate: boolean): Promise<Buffer | undefined> {
    const digest = chunkDigest(chunk);
    if (!inflate) {
      await this.cache.putCompressed(digest, compressed, chunk.uncompressedLength, { verified: true });
      return undefined;
    }
    await this.windowOf(layer, chunk);
    const raw = await inflateChunk(chunk, compressed, { layer: layer.digest });
    const written = this.cache.put(digest, compressed, raw, { verified: true });
    if (this.landing.size >= MAX_LANDING) {
      await written;
      return raw;
    }
    // the reader has its bytes now; the write settles behind it
    this.landing.set(digest, raw);
    const settled = written.then(
      () => undefined,
      (err: unknown) => this.logger.warn({ layer: layer.digest, chunk: chunk.index, err: (err as Error).message }, "a fetched chunk could not be stored; it was served, and is fetched again when read again"),
    ).finally(() => {
      this.landing.delete(digest);
      this.writes.delete(settled);
    });
    this.writes.add(settled);
    return raw;
  }

  private hit(bytes: number): void {
    this.observer?.cacheHit(bytes);
    this.count("cache", bytes);
  }

  private count(source: string, bytes: number): void {
    const t = (this.totals[source] ??= { chunks: 0, bytes: 0 });
    t.chunks++;
    t.bytes += bytes;
  }
}
