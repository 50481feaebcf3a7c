import type { Server } from "node:http";
import { serveMetrics } from "@shoal/supernode";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { FetchObserver } from "../fetch/fetcher.ts";

/** The agent's Prometheus metrics. */
export class AgentMetrics implements FetchObserver {
  readonly registry = new Registry();
  private readonly bytes = new Counter({ name: "shoal_fetch_bytes_total", help: "Chunk bytes obtained, by source (cache, origin)", labelNames: ["source"], registers: [this.registry] });
  private readonly chunks = new Counter({ name: "shoal_fetch_chunks_total", help: "Chunks fetched from a remote source, by source", labelNames: ["source"], registers: [this.registry] });
  private readonly failures = new Counter({ name: "shoal_fetch_failures_total", help: "Failed chunk fetches, by source and reason (error, timeout, digest)", labelNames: ["source", "reason"], registers: [this.registry] });
  private readonly latency = new Histogram({ name: "shoal_fetch_seconds", help: "Chunk fetch latency from remote sources", labelNames: ["source"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [this.registry] });
  private readonly hedges = new Counter({ name: "shoal_fetch_hedges_total", help: "Chunk fetches hedged onto the next source because the first was slow, by source", labelNames: ["source", "to"], registers: [this.registry] });
  private readonly hits = new Counter({ name: "shoal_cache_hits_total", help: "Reads served from the local chunk store", registers: [this.registry] });
  readonly fuseOps = new Counter({ name: "shoal_fuse_operations_total", help: "FUSE operations, by operation", labelNames: ["op"], registers: [this.registry] });
  readonly fuseErrors = new Counter({ name: "shoal_fuse_errors_total", help: "FUSE operations that failed, by operation", labelNames: ["op"], registers: [this.registry] });
  readonly prefetchDone = new Gauge({ name: "shoal_prefetch_chunks_done", help: "Chunks of the image present locally", labelNames: ["image"], registers: [this.registry] });
  readonly prefetchTotal = new Gauge({ name: "shoal_prefetch_chunks_total", help: "Chunks in the image", labelNames: ["image"], registers: [this.registry] });
  readonly peersConnected = new Gauge({ name: "shoal_peers_connected", help: "libp2p peers connected", registers: [this.registry] });
  readonly uploadBytes = new Counter({ name: "shoal_upload_bytes_total", help: "Chunk bytes served to peers", registers: [this.registry] });
  readonly peersDropped = new Gauge({ name: "shoal_peers_dropped", help: "Peers dropped for serving chunks that failed verification", registers: [this.registry] });
  readonly storeBytes = new Gauge({ name: "shoal_store_bytes", help: "Bytes in the chunk store", registers: [this.registry] });

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

  failed(source: string, reason: string): void {
    this.failures.inc({ source, reason });
  }

  hedged(from: string, to: string): void {
    this.hedges.inc({ source: from, to });
  }

  /** Serve `/metrics` on `host:port`; `refresh` runs before each scrape. */
  listen(host: string, port: number, refresh?: () => void): Promise<Server> {
    return serveMetrics(this.registry, host, port, refresh);
  }

}
