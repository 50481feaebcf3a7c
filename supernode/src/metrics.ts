/** The supernode's Prometheus metrics (served by a `MetricsServer` of @shoal/service). */
import { type PreheatStatus } from "@shoal/swarm";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { AnswerGateObserver } from "./answer-gate.ts";
import type { ChunkServiceObserver } from "./chunk-service.ts";
import type { HotChunksObserver, HotChunksStats } from "./hot-chunks.ts";
import type { PreheatObserver } from "./preheat.ts";
import type { SeekableObserver } from "./seekable-indexes.ts";
import type { TraceObserver } from "./startup-traces.ts";

/** Counters and gauges of one supernode (a registry of its own). */
export class SupernodeMetrics implements AnswerGateObserver, ChunkServiceObserver, HotChunksObserver, PreheatObserver, SeekableObserver, TraceObserver {
  readonly registry = new Registry();
  readonly #origin = new Counter({ name: "shoal_supernode_origin_bytes_total", help: "Bytes fetched from origin registries", registers: [this.registry] });
  readonly #served = new Counter({ name: "shoal_supernode_served_bytes_total", help: "Chunk bytes served to callers", registers: [this.registry] });
  readonly #hits = new Counter({ name: "shoal_supernode_cache_hits_total", help: "Chunks found in the cache", registers: [this.registry] });
  readonly #misses = new Counter({ name: "shoal_supernode_cache_misses_total", help: "Chunks fetched from the origin", registers: [this.registry] });
  readonly #preheatDone = new Gauge({ name: "shoal_supernode_preheat_chunks_done", help: "Chunks preheated, by job", labelNames: ["job"], registers: [this.registry] });
  readonly #preheatTotal = new Gauge({ name: "shoal_supernode_preheat_chunks_total", help: "Chunks to preheat, by job", labelNames: ["job"], registers: [this.registry] });
  readonly #reports = new Counter({ name: "shoal_supernode_peer_reports_total", help: "Reports of peers that served chunks failing their digest", registers: [this.registry] });
  readonly #bans = new Counter({ name: "shoal_supernode_peer_bans_total", help: "Peers no longer listed after reports from several peers", registers: [this.registry] });
  readonly #peers = new Gauge({ name: "shoal_supernode_peers_connected", help: "libp2p peers connected (when in the swarm)", registers: [this.registry] });
  readonly #uploaded = new Gauge({ name: "shoal_supernode_upload_bytes", help: "Chunk bytes served to peers over libp2p since start (when in the swarm)", registers: [this.registry] });
  readonly #seekableBuilds = new Counter({ name: "shoal_supernode_seekable_index_builds_total", help: "Seekable indexes built for ordinary layers (one read of the blob each)", registers: [this.registry] });
  readonly #seekableSeconds = new Counter({ name: "shoal_supernode_seekable_index_build_seconds_total", help: "Time spent building seekable indexes", registers: [this.registry] });
  readonly #tracesStored = new Counter({ name: "shoal_supernode_startup_traces_stored_total", help: "Startup traces stored (the first of each image)", registers: [this.registry] });
  readonly #tracesServed = new Counter({ name: "shoal_supernode_startup_traces_served_total", help: "Startup traces served to agents", registers: [this.registry] });
  /** The tracker's table against its bounds (set by the owner before each scrape). */
  readonly trackerPeers = new Gauge({ name: "shoal_supernode_tracker_peers", help: "Peers listed by the tracker", registers: [this.registry] });
  readonly trackerHoldings = new Gauge({ name: "shoal_supernode_tracker_holdings", help: "Layer holdings (peer, layer) listed by the tracker", registers: [this.registry] });
  readonly trackerEvicted = new Gauge({ name: "shoal_supernode_tracker_evicted_peers", help: "Peers the tracker dropped since start to stay within its bounds", registers: [this.registry] });
  readonly #hotBytes = new Gauge({ name: "shoal_supernode_hot_chunk_bytes", help: "Memory held by the chunks read or fetched last", registers: [this.registry] });
  readonly #hotHits = new Counter({ name: "shoal_supernode_hot_chunk_hits_total", help: "Chunk reads answered from memory (the hot chunks) instead of the store", registers: [this.registry] });
  readonly #backgroundWaited = new Counter({ name: "shoal_supernode_background_answers_waited_total", help: "Background chunk answers (agents' prefetch) that waited for answers callers wait for", registers: [this.registry] });
  readonly #backgroundWait = new Counter({ name: "shoal_supernode_background_wait_seconds_total", help: "Time background chunk answers waited for their turn", registers: [this.registry] });
  readonly #requestSeconds = new Histogram({
    name: "shoal_supernode_request_seconds", help: "Time the API took to answer a request, from the handler's first look to the answer's end, by route (routeOf)",
    labelNames: ["route"], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry],
  });
  /** Bytes in the chunk store (set by the owner before each scrape). */
  readonly storeBytes = new Gauge({ name: "shoal_supernode_store_bytes", help: "Bytes in the chunk store", registers: [this.registry] });

  /** The counters' values as plain numbers, for the status page. */
  readonly #totals = { originBytes: 0, servedBytes: 0, hits: 0, misses: 0 };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "shoal_supernode_" });
  }

  /** Since start: bytes from origins, bytes served, cache hits and misses. */
  totals(): { originBytes: number; servedBytes: number; hits: number; misses: number } {
    return { ...this.#totals };
  }

  /** An API request on `route` was answered in `seconds`. */
  answered(route: string, seconds: number): void {
    this.#requestSeconds.observe({ route }, seconds);
  }

  originBytes(bytes: number): void {
    this.#origin.inc(bytes);
    this.#totals.originBytes += bytes;
  }

  cacheHit(): void {
    this.#hits.inc();
    this.#totals.hits++;
  }

  cacheMiss(): void {
    this.#misses.inc();
    this.#totals.misses++;
  }

  traceStored(): void {
    this.#tracesStored.inc();
  }

  traceServed(): void {
    this.#tracesServed.inc();
  }

  /** Count bytes sent to a caller. */
  served(bytes: number): void {
    this.#served.inc(bytes);
    this.#totals.servedBytes += bytes;
  }

  /** Count a peer report, and a ban when it caused one. */
  reported(banned: boolean): void {
    this.#reports.inc();
    if (banned) this.#bans.inc();
  }

  /** Count a seekable index built. */
  built(_layer: string, ms: number): void {
    this.#seekableBuilds.inc();
    this.#seekableSeconds.inc(ms / 1000);
  }

  /** Set the hot chunks' gauge (before a scrape). */
  hotChunks(s: HotChunksStats): void {
    this.#hotBytes.set(s.bytes);
  }

  backgroundStarted(ms: number): void {
    if (ms <= 0) return;
    this.#backgroundWaited.inc();
    this.#backgroundWait.inc(ms / 1000);
  }

  hotHit(): void {
    this.#hotHits.inc();
  }

  /** Set the swarm gauges (before a scrape). */
  swarm(s: { bytesUploaded: number; connected: number }): void {
    this.#peers.set(s.connected);
    this.#uploaded.set(s.bytesUploaded);
  }

  progress(id: string, s: PreheatStatus): void {
    this.#preheatDone.set({ job: id }, s.chunksDone);
    this.#preheatTotal.set({ job: id }, s.chunksTotal);
  }

}
