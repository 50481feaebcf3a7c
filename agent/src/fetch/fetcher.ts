import { createHash } from "node:crypto";
import { chunkMatches, gunzipMemberAsync, ShoalError, untilAborted, type Chunk, type LayerIndex } from "@shoal/blockindex";
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
  /** False when this source surely cannot serve `layer` now (e.g. no peer holds it): it is skipped. */
  canServe?(layer: RemoteLayer): boolean;
  /** The bytes this source last returned for `chunk` failed verification: stop trusting whoever sent them. */
  reportBad?(layer: RemoteLayer, chunk: Chunk): void;
}

/** Largest run of adjacent chunks fetched in one range request. */
export const MAX_RUN_BYTES = 4 << 20;

/** The part of the chunk store the fetcher needs. */
export interface ChunkCache {
  has(digest: string): boolean;
  put(digest: string, compressed: Uint8Array, raw: Uint8Array): Promise<void>;
  readRaw(digest: string, offset: number, length: number): Promise<Buffer | undefined>;
}

/** What the fetcher reports to metrics. */
export interface FetchObserver {
  fetched(source: string, bytes: number, seconds: number): void;
  cacheHit(bytes: number): void;
  failed(source: string, reason: string): void;
}

/** A chunk could not be had from any source in time. */
export class FetchError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_FETCH_FAILED", message, options);
  }
}

/** Per-source totals, for `shoal status`. */
export type SourceTotals = Record<string, { chunks: number; bytes: number }>;

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
  private readonly inflight = new Map<string, Promise<Buffer>>();
  /** On-demand fetches under way; background work yields to them. */
  foreground = 0;
  /** When the last on-demand fetch started (performance.now() ms): background work waits for a quiet spell. */
  lastForegroundAt = Number.NEGATIVE_INFINITY;

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

  /** True when chunk `i` of `layer` is in the local store. */
  has(layer: RemoteLayer, i: number): boolean {
    return this.cache.has(hexOf(layer.index.chunk(i).digest));
  }

  /**
   * Make chunk `i` of `layer` local (fetching it if needed) and return its
   * uncompressed bytes when `wantBytes` (else an empty buffer).
   * `background` fetches do not count as on-demand.
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
      p = this.fetchAndStore(layer, chunk, digest, opts.background === true).finally(() => this.inflight.delete(digest));
      this.inflight.set(digest, p);
    }
    return untilAborted(p, opts.signal);
  }

  /**
   * Make chunks `first..last` of `layer` local. Missing chunks are fetched in
   * runs of adjacent chunks, one range request per run (up to
   * `MAX_RUN_BYTES`), from the first origin that can serve ranges; each chunk
   * is verified on its own, and one that fails is fetched again alone.
   */
  async ensureRange(layer: RemoteLayer, first: number, last: number, opts: { signal?: AbortSignal; background?: boolean; maxRunBytes?: number } = {}): Promise<void> {
    const maxRun = opts.maxRunBytes ?? MAX_RUN_BYTES;
    const waits: Promise<unknown>[] = [];
    let run: number[] = [];
    let runBytes = 0;
    const flush = () => {
      if (run.length === 0) return;
      const ids = run;
      run = [];
      runBytes = 0;
      if (ids.length === 1) {
        waits.push(this.ensure(layer, ids[0]!, opts));
        return;
      }
      const fetched = this.fetchRun(layer, ids, opts.background === true);
      fetched.catch(() => {});
      for (const i of ids) {
        const digest = hexOf(layer.index.chunk(i).digest);
        const p = fetched.then((m) => m.get(i) ?? this.fetchAndStore(layer, layer.index.chunk(i), digest, opts.background === true));
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

  /** Fetch adjacent chunks `ids` in one request; resolves the verified, stored ones (uncompressed). */
  private async fetchRun(layer: RemoteLayer, ids: number[], background: boolean): Promise<Map<number, Buffer>> {
    const out = new Map<number, Buffer>();
    // The first source that can serve the layer takes the run if it serves ranges;
    // otherwise the chunks go one by one through every source in order.
    const origin = this.origins.find((o) => !o.canServe || o.canServe(layer));
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
        const raw = await gunzipMemberAsync(piece, chunk.uncompressedLength, { layer: layer.digest, blobOffset: chunk.offset });
        await this.cache.put(hexOf(chunk.digest), piece, raw);
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
   * One chunk through the sources in order. A source slower than the hedge
   * delay gets company: the next source starts too, and the first verified
   * answer wins. A source whose bytes fail the digest is told (`reportBad`)
   * and asked once more, then the next one is tried.
   */
  private async fetchAndStore(layer: RemoteLayer, chunk: Chunk, digest: string, background: boolean): Promise<Buffer> {
    if (!background) {
      this.foreground++;
      this.lastForegroundAt = performance.now();
    }
    const deadline = AbortSignal.timeout(this.timeoutMs);
    const candidates = this.origins.filter((o) => !o.canServe || o.canServe(layer));
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
          // origin behind the swarm) just for being slow: it is asked only when
          // the others have failed, so the origin sees each chunk about once.
          const nextIsLastResort = next === candidates.length - 1 && candidates.length > 1 && candidates[next]!.lastResort === true;
          const hedge = setTimeout(() => {
            if (!nextIsLastResort) launch();
          }, this.hedgeMs);
          this.attempt(layer, chunk, origin, AbortSignal.any([deadline, ctl.signal]), errors).then(
            (got) => {
              clearTimeout(hedge);
              running--;
              if (settled) return;
              if (got) {
                settled = true;
                for (const c of controllers) c.abort(new Error("another source answered"));
                resolve(got);
              } else launch();
            },
            () => {
              clearTimeout(hedge);
              running--;
              if (!settled) launch();
            },
          );
        };
        launch();
      });
      const raw = await gunzipMemberAsync(bytes.bytes, chunk.uncompressedLength, { layer: layer.digest, blobOffset: chunk.offset });
      await this.cache.put(digest, bytes.bytes, raw);
      this.observer?.fetched(bytes.origin.name, bytes.bytes.length, bytes.seconds);
      this.count(bytes.origin.name, bytes.bytes.length);
      this.logger.debug({ layer: layer.digest, chunk: chunk.index, source: bytes.origin.name, bytes: bytes.bytes.length, background }, "chunk fetched");
      return raw;
    } finally {
      if (!background) this.foreground--;
    }
  }

  /** Up to two tries at one source; the verified bytes, or undefined (reasons appended to `errors`). */
  private async attempt(layer: RemoteLayer, chunk: Chunk, origin: ChunkOrigin, signal: AbortSignal, errors: string[]): Promise<{ bytes: Uint8Array; origin: ChunkOrigin; seconds: number } | undefined> {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const started = performance.now();
      let bytes: Uint8Array;
      try {
        bytes = await origin.fetch(layer, chunk, { signal });
      } catch (err) {
        const timedOut = signal.aborted && !(signal.reason instanceof Error && signal.reason.message === "another source answered");
        const reason = timedOut ? `timed out after ${this.timeoutMs} ms` : (err as Error).message;
        errors.push(`${origin.name}: ${reason}`);
        this.observer?.failed(origin.name, timedOut ? "timeout" : "error");
        this.logger.warn({ layer: layer.digest, chunk: chunk.index, source: origin.name, err: reason }, "chunk fetch failed");
        return undefined; // clients retry already; the next source gets a turn
      }
      if (chunkMatches(chunk, bytes)) return { bytes, origin, seconds: (performance.now() - started) / 1000 };
      const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
      errors.push(`${origin.name}: digest mismatch (got ${actual})`);
      origin.reportBad?.(layer, chunk);
      this.observer?.failed(origin.name, "digest");
      this.logger.error({ layer: layer.digest, chunk: chunk.index, source: origin.name, expected: `sha256:${chunk.digest.toString("hex")}`, actual, attempt }, "chunk failed its digest");
    }
    return undefined;
  }

}
