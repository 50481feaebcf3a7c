import type { FetchObserver } from "@shoal/fetch";
import { RecentEvents } from "@shoal/service";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Live state the gauges are set from before each scrape. */
export interface ScrapeSources {
  storeBytes(): number;
  images(): Array<{ digest: string; prefetch?: { chunksDone: number; chunksTotal: number } }>;
  fuse(): { ops: Record<string, number>; errors: Record<string, number> };
  /** Present when the peer swarm is on. */
  swarm?(): { connected: number; bytesUploaded: number; dropped: number };
}

/** The agent's Prometheus metrics. */
export class AgentMetrics implements FetchObserver {
  readonly registry = new Registry();
  /** The last distinct failures, for the status page. */
  readonly recent = new RecentEvents();
  private readonly bytes = new Counter({ name: "shoal_fetch_bytes_total", help: "Chunk bytes obtained, by source (cache, origin)", labelNames: ["source"], registers: [this.registry] });
  private readonly chunks = new Counter({ name: "shoal_fetch_chunks_total", help: "Chunks fetched from a remote source, by source", labelNames: ["source"], registers: [this.registry] });
  private readonly failures = new Counter({ name: "shoal_fetch_failures_total", help: "Failed chunk fetches, by source and reason (error, timeout, digest)", labelNames: ["source", "reason"], registers: [this.registry] });
  private readonly latency = new Histogram({ name: "shoal_fetch_seconds", help: "Chunk fetch latency from remote sources", labelNames: ["source"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  private readonly hedges = new Counter({ name: "shoal_fetch_hedges_total", help: "Chunk fetches hedged onto the next source because the first was slow, by source", labelNames: ["source", "to"], registers: [this.registry] });
  private readonly hits = new Counter({ name: "shoal_cache_hits_total", help: "Reads served from the local chunk store", registers: [this.registry] });
  private readonly fuseOps = new Counter({ name: "shoal_fuse_operations_total", help: "FUSE operations, by operation", labelNames: ["op"], registers: [this.registry] });
  private readonly fuseErrors = new Counter({ name: "shoal_fuse_errors_total", help: "FUSE operations that failed, by operation", labelNames: ["op"], registers: [this.registry] });
  private readonly prefetchDone = new Gauge({ name: "shoal_prefetch_chunks_done", help: "Chunks of the image present locally", labelNames: ["image"], registers: [this.registry] });
  private readonly prefetchTotal = new Gauge({ name: "shoal_prefetch_chunks_total", help: "Chunks in the image", labelNames: ["image"], registers: [this.registry] });
  private readonly peersConnected = new Gauge({ name: "shoal_peers_connected", help: "libp2p peers connected", registers: [this.registry] });
  private readonly uploadBytes = new Counter({ name: "shoal_upload_bytes_total", help: "Chunk bytes served to peers", registers: [this.registry] });
  private readonly peersDropped = new Gauge({ name: "shoal_peers_dropped", help: "Peers dropped for serving chunks that failed verification", registers: [this.registry] });
  private readonly mirrorRequests = new Counter({ name: "shoal_mirror_requests_total", help: "Registry mirror requests, by kind (ping, manifest, blob) and status", labelNames: ["kind", "status"], registers: [this.registry] });
  private readonly mirrorBytes = new Counter({ name: "shoal_mirror_blob_bytes_total", help: "Blob bytes the registry mirror sent engines, by source (supernode, origin)", labelNames: ["source"], registers: [this.registry] });
  private readonly storeBytes = new Gauge({ name: "shoal_store_bytes", help: "Bytes in the chunk store", registers: [this.registry] });
  /** What the counters fed from cumulative totals had reached at the last scrape. */
  private readonly last = { ops: {} as Record<string, number>, errors: {} as Record<string, number>, uploaded: 0 };

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "shoal_agent_" });
  }

  fetched(source: string, bytes: number, seconds: number): void {
    this.bytes.inc({ source }, bytes);
    this.chunks.inc({ source });
    this.latency.observe({ source }, seconds);
  }

  cacheHit(bytes: number): void {
    this.hits.inc();
    this.bytes.inc({ source: "cache" }, bytes);
  }

  failed(source: string, reason: string, detail: string): void {
    this.failures.inc({ source, reason });
    this.recent.add(`fetch from ${source} failed: ${detail}`);
  }

  /** `MirrorObserver`: a mirror request answered. */
  answered(kind: string, status: number): void {
    this.mirrorRequests.inc({ kind, status: String(status) });
    if (status >= 500) this.recent.add(`registry mirror answered a ${kind} request with ${status}`);
  }

  /** `MirrorObserver`: blob bytes sent to an engine. */
  blobBytes(source: string, bytes: number): void {
    this.mirrorBytes.inc({ source }, bytes);
  }

  hedged(from: string, to: string): void {
    this.hedges.inc({ source: from, to });
  }

  /** A refresh for the metrics server: sets gauges, and counters from cumulative totals, from `s` before each scrape. */
  scraper(s: ScrapeSources): () => void {
    return () => {
      this.storeBytes.set(s.storeBytes());
      for (const img of s.images()) {
        if (!img.prefetch) continue;
        this.prefetchDone.set({ image: img.digest }, img.prefetch.chunksDone);
        this.prefetchTotal.set({ image: img.digest }, img.prefetch.chunksTotal);
      }
      const fuse = s.fuse();
      for (const [op, n] of Object.entries(fuse.ops)) this.fuseOps.inc({ op }, n - (this.last.ops[op] ?? 0));
      for (const [op, n] of Object.entries(fuse.errors)) this.fuseErrors.inc({ op }, n - (this.last.errors[op] ?? 0));
      Object.assign(this.last.ops, fuse.ops);
      Object.assign(this.last.errors, fuse.errors);
      const swarm = s.swarm?.();
      if (swarm) {
        this.peersConnected.set(swarm.connected);
        this.uploadBytes.inc(swarm.bytesUploaded - this.last.uploaded);
        this.last.uploaded = swarm.bytesUploaded;
        this.peersDropped.set(swarm.dropped);
      }
    };
  }
}
