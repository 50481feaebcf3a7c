/** Preheat jobs: pull this supernode's share of an image's chunks into its cache. */
import { type Credentials, type RegistryClients } from "@shoal/oci";
import { errorBody, ShoalError } from "@shoal/base";
import { randomUUID } from "node:crypto";
import { chunkDigest, parseLazyAnnotations, requireLazyLayers, type LayerIndex } from "@shoal/blockindex";
import { normalizeSupernodeUrl, ownerOf, type LayerRef, type PreheatRequest, type PreheatStatus } from "@shoal/swarm";
import type { Logger } from "pino";
import type { ChunkService } from "./chunk-service.ts";
import { DEFAULT_PREHEAT_CONCURRENCY, PREHEAT_JOB_RETENTION_MS } from "./constants.ts";
import type { IndexHint } from "./index-cache.ts";

/** Progress callbacks of preheat jobs (metrics). */
export interface PreheatObserver {
  progress?(id: string, status: PreheatStatus): void;
}

/** Settings of a `PreheatJobs`. */
export interface PreheatJobsInit {
  /** This supernode's base URL. */
  self?: string;
  /** Base URLs of every supernode, itself included; empty: it owns every chunk. */
  peers?: readonly string[];
  /** Range requests kept in flight per job. */
  concurrency?: number;
  /** Jobs running at once; more are refused (429). Default 16. */
  maxRunning?: number;
  /** Job records kept (running and finished); the oldest finished ones go first. Default 1,000. */
  maxKept?: number;
}

interface Job {
  status: PreheatStatus;
  /** The image as asked for. */
  image: string;
  started: number;
  /** Its layers, once its manifest is read: what an access check of the job's image asks the registry about. */
  layers: LayerRef[];
  finished?: number;
}

/** A preheat job as `PreheatJobs.list` gives it. */
export interface PreheatJobView {
  id: string;
  image: string;
  started: number;
  layers: LayerRef[];
  status: PreheatStatus;
}

/** What preheat needs of `SeekableIndexes`. */
export interface SeekableBuilds {
  get(blob: LayerRef, opts: { signal?: AbortSignal; credentials?: Credentials }): Promise<unknown>;
}

/** Runs and remembers preheat jobs. */
export class PreheatJobs {
  readonly #chunks: ChunkService;
  readonly #seekable: SeekableBuilds | undefined;
  readonly #origins: RegistryClients;
  readonly #log: Logger;
  readonly #observer: PreheatObserver;
  readonly #self: string | undefined;
  readonly #peers: string[];
  readonly #concurrency: number;
  readonly #maxRunning: number;
  readonly #maxKept: number;
  readonly #jobs = new Map<string, Job>();
  readonly #running = new Set<Promise<void>>();
  readonly #lifetime = new AbortController();

  /** `seekable`: builds seekable indexes of ordinary layers (without it, images must be converted). */
  constructor(components: { chunks: ChunkService; seekable?: SeekableBuilds; origins: RegistryClients; logger: Logger; observer?: PreheatObserver }, init: PreheatJobsInit = {}) {
    this.#chunks = components.chunks;
    this.#seekable = components.seekable;
    this.#origins = components.origins;
    this.#log = components.logger.child({ component: "preheat" });
    this.#observer = components.observer ?? {};
    this.#self = init.self === undefined ? undefined : normalizeSupernodeUrl(init.self);
    this.#peers = (init.peers ?? []).map(normalizeSupernodeUrl);
    this.#concurrency = init.concurrency ?? DEFAULT_PREHEAT_CONCURRENCY;
    this.#maxRunning = init.maxRunning ?? 16;
    this.#maxKept = init.maxKept ?? 1000;
    if (this.#peers.length > 0 && (this.#self === undefined || !this.#peers.includes(this.#self))) {
      throw new ShoalError("SHOAL_ERR_BAD_REQUEST", "supernode: self must be one of peers");
    }
  }

  /** Start a job; returns its id at once. */
  start(req: PreheatRequest, opts: { credentials?: Credentials } = {}): string {
    if (this.#lifetime.signal.aborted) throw new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down");
    // a registry off the allow list is refused now (403), not in a job that failed
    this.#origins.client(req.image.registry, opts.credentials);
    this.#forgetOld();
    if (this.#running.size >= this.#maxRunning) throw new ShoalError("SHOAL_ERR_TOO_MANY_JOBS", `${this.#running.size} preheat jobs are running, the most this supernode takes; try again when one has finished`);
    const id = randomUUID();
    const job: Job = { image: req.image.toString(), started: Date.now(), layers: [], status: { state: "running", chunksDone: 0, chunksTotal: 0, bytesDone: 0, bytesTotal: 0 } };
    this.#jobs.set(id, job);
    const p = this.#run(id, job, req, opts.credentials).then(
      () => {
        job.status.state = "done";
      },
      (err: unknown) => {
        job.status.state = "failed";
        job.status.error = errorBody(err);
        if (job.status.error.code === "SHOAL_ERR_INTERNAL") job.status.error.message = (err as Error)?.message ?? String(err);
        this.#log.warn({ id, image: req.image.toString(), err }, "preheat failed");
      },
    );
    const tracked = p.finally(() => {
      job.finished = Date.now();
      this.#observer.progress?.(id, job.status);
      this.#running.delete(tracked);
    });
    this.#running.add(tracked);
    return id;
  }

  /** A job's status; `SHOAL_ERR_PREHEAT_NOT_FOUND` when unknown (or forgotten an hour after it ended). */
  status(id: string): PreheatStatus {
    const job = this.#jobs.get(id);
    if (!job) throw new ShoalError("SHOAL_ERR_PREHEAT_NOT_FOUND", `no preheat job ${JSON.stringify(id.slice(0, 64))}`);
    return { ...job.status };
  }

  /** Every job kept, newest first. */
  list(): PreheatJobView[] {
    return [...this.#jobs.entries()].reverse().map(([id, j]) => ({ id, image: j.image, started: j.started, layers: [...j.layers], status: { ...j.status } }));
  }

  async #run(id: string, job: Job, req: PreheatRequest, credentials: Credentials | undefined): Promise<void> {
    const signal = this.#lifetime.signal;
    const client = this.#origins.client(req.image.registry, credentials);
    const resolved = await client.resolveImage(req.image, { signal, ...(req.platform ? { platform: req.platform } : {}) });
    if (!this.#seekable) requireLazyLayers(resolved.manifest.layers, req.image.toString());
    const all = resolved.manifest.layers.map((desc) => ({
      ref: { registry: req.image.registry, repository: req.image.repository, digest: desc.digest },
      size: desc.size,
      info: parseLazyAnnotations(desc.annotations, desc.digest),
    }));
    const layers: { ref: LayerRef; hint: IndexHint }[] = all.flatMap((l) => (l.info ? [{ ref: l.ref, hint: { location: l.info.location, indexDigest: l.info.indexDigest } }] : []));
    job.layers = all.map((l) => l.ref);
    const opts = { signal, ...(credentials ? { credentials } : {}) };
    // an ordinary layer is preheated by its owner building its seekable index: one read of the blob, into the block cache
    const ordinary = all.filter((l) => !l.info && this.#owns(l.ref.digest));
    for (const l of ordinary) {
      job.status.chunksTotal++;
      job.status.bytesTotal += l.size;
    }
    const seekable = this.#seekable;
    const indexed = Promise.all(ordinary.map(async (l) => {
      await seekable!.get(l.ref, opts);
      job.status.chunksDone++;
      job.status.bytesDone += l.size;
      this.#observer.progress?.(id, job.status);
    }));
    indexed.catch(() => undefined);
    const plans: { ref: LayerRef; index: LayerIndex; positions: number[] }[] = [];
    const seen = new Set<string>();
    for (const l of layers) {
      const index = await this.#chunks.index(l.ref, { ...opts, hint: l.hint });
      const positions: number[] = [];
      for (let i = 0; i < index.chunkCount; i++) {
        const c = index.chunk(i);
        const d = chunkDigest(c);
        if (seen.has(d) || !this.#owns(d)) continue;
        seen.add(d);
        positions.push(i);
        job.status.chunksTotal++;
        job.status.bytesTotal += c.length;
      }
      plans.push({ ref: l.ref, index, positions });
    }
    this.#observer.progress?.(id, job.status);
    this.#log.info({ id, image: req.image.toString(), chunks: job.status.chunksTotal, bytes: job.status.bytesTotal }, "preheat started");
    // Batches of adjacent owned chunks, worked on `concurrency` at a time.
    const batches: { ref: LayerRef; index: LayerIndex; positions: number[] }[] = [];
    for (const p of plans) {
      let cur: number[] = [];
      for (const i of p.positions) {
        if (cur.length > 0 && (i !== cur[cur.length - 1]! + 1 || cur.length >= 16)) {
          batches.push({ ...p, positions: cur });
          cur = [];
        }
        cur.push(i);
      }
      if (cur.length > 0) batches.push({ ...p, positions: cur });
    }
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (!failed && next < batches.length) {
        const b = batches[next++]!;
        try {
          await this.#chunks.ensureChunks(b.ref, b.index, b.positions, opts);
        } catch (err) {
          failed = true;
          throw err;
        }
        for (const i of b.positions) {
          job.status.chunksDone++;
          job.status.bytesDone += b.index.chunk(i).length;
        }
        this.#observer.progress?.(id, job.status);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.#concurrency) }, worker));
    await indexed;
  }

  #owns(digest: string): boolean {
    return this.#peers.length === 0 || ownerOf(digest, this.#peers) === this.#self;
  }

  #forgetOld(): void {
    const cutoff = Date.now() - PREHEAT_JOB_RETENTION_MS;
    for (const [id, j] of this.#jobs) if (j.finished !== undefined && j.finished < cutoff) this.#jobs.delete(id);
    // and never more than maxKept records (running jobs are at most maxRunning of them): the oldest finished first
    for (const [id, j] of this.#jobs) {
      if (this.#jobs.size < this.#maxKept) break;
      if (j.finished !== undefined) this.#jobs.delete(id);
    }
  }

  /** Abort running jobs and wait for them to end. */
  async close(): Promise<void> {
    this.#lifetime.abort(new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is shutting down"));
    await Promise.all([...this.#running]);
  }
}
