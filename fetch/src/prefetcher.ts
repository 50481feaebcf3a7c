/**
 * The background stream: every chunk of a mounted image into the store at a
 * bounded rate, behind the reads, so that the image stops depending on the
 * network.
 */
import { AbortedError, sleep, TokenBucket, type DemandActivity } from "@shoal/base";
import type { Logger } from "pino";
import type { Fetcher } from "./fetcher.ts";
import { runBytes } from "./chunk-source.ts";
import { BACKGROUND_RUN_BYTES, prefetchOrder, startupRuns, takeRun, type ChunkPos, type LengthOf } from "./prefetch-plan.ts";
import type { RemoteLayer } from "./remote-layer.ts";

/** What the stream pays before it fetches (a `TokenBucket` of bytes per second). */
export interface RateLimit {
  /** Resolves once `bytes` may be fetched; rejects with the signal's reason when it aborts. */
  take(bytes: number, opts: { signal?: AbortSignal }): Promise<void>;
}

/** How long the background stream stays quiet after an on-demand fetch started (or a reader was served). */
export const QUIET_MS = 500;

/**
 * Longest a background run waits for reads to go quiet; past it, one run
 * goes on while they read, and another only `MAX_YIELD_MS` after that one
 * ended (so that a container reading all the time still gets the rest of
 * its image, while its reads keep nearly all of the link).
 */
export const MAX_YIELD_MS = 2000;

/** Background runs in flight at once. */
export const PREFETCH_CONCURRENCY = 4;

/** Chunks inflated at once by the idle-time pass (libuv pool work, leaving room for reads). */
const INFLATE_CONCURRENCY = 2;

/** Startup chunks fetched at once after a mount. */
export const STARTUP_CONCURRENCY = 8;

/** Progress of one image's prefetch. */
export interface PrefetchProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  finished: boolean;
  /** Every chunk is also stored inflated (the idle-time pass after `finished`), so reads inflate nothing. */
  inflated: boolean;
  failures: number;
  /** Chunks taken first from the image's recorded startup order. */
  startupChunks: number;
  /** Those have been fetched (or failed once); the stream goes on with the rest. */
  startupDone: boolean;
  /** The first few chunks of the order, for inspection. */
  head: ChunkPos[];
  /** Each layer's chunk count and the chunk its part of the stream began from (random with `spread`): what the fleet simulator replays. */
  layers: Array<{ chunks: number; from: number }>;
}


/**
 * Streams every chunk of an image into the store at a bounded rate,
 * `first` (the recorded startup order) before the rest, layer by layer.
 * On-demand reads come first: workers pause while any foreground fetch is
 * under way. A chunk that fails is retried after the others, up to 3 times.
 */
export class PrefetchJob {
  private readonly fetcher: Fetcher;
  private readonly logger: Logger;
  private readonly layers: RemoteLayer[];
  private readonly order: ChunkPos[];
  private readonly from: number[];
  private readonly controller = new AbortController();
  private readonly limiter: RateLimit;
  private readonly demand: DemandActivity;
  private readonly concurrency: number;
  private failures = 0;
  private readonly startupChunks: number;
  private finishedFlag = false;
  private startupFlag = false;
  /** A run is fetched while reads are under way (past `MAX_YIELD_MS`): the others wait for it, and then for `trickleAt`. */
  private trickling = false;
  private trickleAt = 0;
  private inflatedFlag = false;
  /** True while the host has better things to do than idle-time work (serving peers). */
  private readonly busy: (() => boolean) | undefined;
  /** What `progress` has counted so far: chunks not yet seen local, and totals. */
  private seen: { pending: ChunkPos[]; chunksDone: number; bytesDone: number; bytesTotal: number } | undefined;
  /** Resolves when every chunk is local (or the job was stopped). */
  readonly done: Promise<void>;

  /**
   * `demand` defaults to the fetcher's; `limiter` to a token bucket of
   * `rateBytesPerSec` with a burst of `burstBytes` (default a quarter of a
   * second's worth, at least 4 MiB).
   */
  constructor(
    components: { fetcher: Fetcher; logger: Logger; busy?: () => boolean; demand?: DemandActivity; limiter?: RateLimit },
    init: { layers: RemoteLayer[]; first?: ChunkPos[]; rateBytesPerSec: number; burstBytes?: number; concurrency?: number; spread?: boolean; random?: () => number },
  ) {
    this.fetcher = components.fetcher;
    this.demand = components.demand ?? components.fetcher.demand;
    this.busy = components.busy;
    this.logger = components.logger.child({ component: "prefetch" });
    this.layers = init.layers;
    this.limiter = components.limiter ?? new TokenBucket({ rate: init.rateBytesPerSec, burst: init.burstBytes ?? Math.max(init.rateBytesPerSec / 4, 4 << 20) });
    this.concurrency = init.concurrency ?? PREFETCH_CONCURRENCY;
    const planned = prefetchOrder(this.layers.map((l) => l.index.chunkCount), init.first ?? [], { ...(init.spread !== undefined ? { spread: init.spread } : {}), ...(init.random ? { random: init.random } : {}) });
    this.order = planned.order;
    this.from = planned.from;
    this.startupChunks = planned.startup;
    this.done = this.run();
  }

  /** Stop fetching (chunks in flight complete). */
  stop(): void {
    this.controller.abort(new AbortedError("prefetch stopped"));
  }

  /**
   * Where the job stands. Chunks only become local (the mount pins them), so
   * each call checks only the chunks not yet seen local: status polls stay
   * cheap on large images.
   */
  progress(): PrefetchProgress {
    if (!this.seen) {
      let bytesTotal = 0;
      for (const [li, c] of this.order) bytesTotal += this.layers[li]!.index.chunk(c).length;
      this.seen = { pending: [...this.order], chunksDone: 0, bytesDone: 0, bytesTotal };
    }
    const seen = this.seen;
    seen.pending = seen.pending.filter(([li, c]) => {
      if (!this.fetcher.has(this.layers[li]!, c)) return true;
      seen.chunksDone++;
      seen.bytesDone += this.layers[li]!.index.chunk(c).length;
      return false;
    });
    return {
      chunksDone: seen.chunksDone, chunksTotal: this.order.length, bytesDone: seen.bytesDone, bytesTotal: seen.bytesTotal,
      finished: this.finishedFlag, inflated: this.inflatedFlag, failures: this.failures, startupChunks: this.startupChunks, startupDone: this.startupFlag, head: this.order.slice(0, 8),
      layers: this.layers.map((l, li) => ({ chunks: l.index.chunkCount, from: this.from[li]! })),
    };
  }

  /**
   * Idle-time pass once every chunk is local: store the inflated copy of
   * each chunk the background stream stored compressed only, in the order
   * reads are likely (startup first), yielding to on-demand reads and
   * waiting while the host serves peers (`busy`). Deferred to here so that
   * hosts fetching an image at the same moment spend their CPU on getting
   * and sharing it first.
   */
  private async inflateAll(signal: AbortSignal): Promise<void> {
    const todo = this.order.filter(([li, c]) => !this.fetcher.hasInflated(this.layers[li]!, c));
    const worker = async () => {
      while (!signal.aborted) {
        const next = todo.shift();
        if (!next) return;
        while (this.readsUnderWay() || this.busy?.()) await sleep(100, signal);
        await this.fetcher.inflateLocal(this.layers[next[0]]!, next[1]).catch((err: Error) => {
          this.logger.warn({ layer: this.layers[next[0]]!.digest, chunk: next[1], err: err.message }, "inflating a stored chunk failed");
        });
      }
    };
    await Promise.all(Array.from({ length: INFLATE_CONCURRENCY }, worker)).catch(() => {});
    if (signal.aborted) return;
    this.inflatedFlag = this.order.every(([li, c]) => this.fetcher.hasInflated(this.layers[li]!, c));
    this.logger.info({ chunks: this.order.length, complete: this.inflatedFlag }, "inflated copies stored");
  }

  /** True while an on-demand fetch is under way or started less than `QUIET_MS` ago: background work waits. */
  private readsUnderWay(): boolean {
    return this.demand.busy(QUIET_MS);
  }

  private async run(): Promise<void> {
    // The startup chunks are what a container reads first: fetch them at once,
    // in parallel and unthrottled, and store them inflated, before streaming
    // the rest (stored compressed, inflated on their first read).
    const startup = this.order.slice(0, this.startupChunks);
    const signal0 = this.controller.signal;
    const lengthOf: LengthOf = (li, c) => this.layers[li]!.index.chunk(c).length;
    const runs = startupRuns(startup, lengthOf);
    let next = 0;
    const startupWorker = async () => {
      while (!signal0.aborted && next < runs.length) {
        const [li, first, last] = runs[next++]!;
        await this.fetcher.ensureRange(this.layers[li]!, first, last, { signal: signal0, background: true, startup: true, inflate: true }).catch((err: Error) => {
          if (!signal0.aborted) this.logger.warn({ first, last, err: err.message }, "startup prefetch of chunks failed");
        });
      }
    };
    await Promise.all(Array.from({ length: STARTUP_CONCURRENCY }, startupWorker));
    this.startupFlag = true;
    const queue = this.order.slice(this.startupChunks);
    const attempts = new Map<string, number>();
    const signal = this.controller.signal;
    const worker = async () => {
      while (!signal.aborted) {
        const run = takeRun(queue, (li, c) => this.fetcher.has(this.layers[li]!, c), lengthOf);
        if (!run) return;
        const [li, c, last] = run;
        const layer = this.layers[li]!;
        const { start, end } = runBytes(layer, c, last);
        const bytes = end - start;
        let trickle = false;
        try {
          // on-demand reads first: wait while any is under way, and for a quiet spell after the last;
          // past MAX_YIELD_MS one run goes on beside them, the next MAX_YIELD_MS after it ended
          const until = performance.now() + MAX_YIELD_MS;
          while (this.readsUnderWay() && (this.trickling || performance.now() < Math.max(until, this.trickleAt))) await sleep(20, signal);
          trickle = this.readsUnderWay();
          if (trickle) this.trickling = true;
          await this.limiter.take(bytes, { signal });
          await this.fetcher.ensureRange(layer, c, last, { signal, background: true, maxRunBytes: BACKGROUND_RUN_BYTES });
        } catch (err) {
          if (signal.aborted) return;
          const key = `${li}:${c}`;
          const n = (attempts.get(key) ?? 0) + 1;
          attempts.set(key, n);
          this.failures++;
          this.logger.warn({ layer: layer.digest, chunk: c, last, attempt: n, err: (err as Error).message }, "prefetch of a run failed");
          // the whole run goes back, its chunks still missing counted under its first
          if (n < 3) for (let k = c; k <= last; k++) if (!this.fetcher.has(layer, k)) queue.push([li, k]);
          await sleep(200 * n, signal).catch(() => {});
        } finally {
          if (trickle) {
            this.trickling = false;
            this.trickleAt = performance.now() + MAX_YIELD_MS;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, worker));
    if (!signal.aborted) {
      // startup chunks that failed above get one more go at the normal pace
      for (const [li, c] of startup) if (!this.fetcher.has(this.layers[li]!, c)) await this.fetcher.ensure(this.layers[li]!, c, { signal, background: true }).catch(() => {});
      this.finishedFlag = this.order.every(([li, c]) => this.fetcher.has(this.layers[li]!, c));
      this.logger.info({ chunks: this.order.length, complete: this.finishedFlag }, "prefetch finished");
      if (this.finishedFlag) await this.inflateAll(signal);
    }
  }
}
