/** Wiring of one supernode process: LevelDB, chunk store, origins, API server, metrics. */

import { mkdir } from "node:fs/promises";
import { createServer } from "node:http";
import { join } from "node:path";
import { RegistryClientPool } from "@shoal/oci";
import { ChunkStore, openMetadataDb } from "@shoal/store";
import type { Logger } from "pino";
import { createApiHandler, timedAnswerChunks, type ApiComponents } from "./api.ts";
import { ApiThreads } from "./api-threads.ts";
import { AccessCheck } from "./access.ts";
import { BlobService, type BlockDb } from "./blob-service.ts";
import { ChunkService } from "./chunk-service.ts";
import { BLOCK_RECORD_SWEEP_MS, DEFAULT_CACHE_SIZE, DEFAULT_HOT_CHUNK_BYTES, DEFAULT_ORIGIN_RETRY_MS } from "./constants.ts";
import { HotChunks } from "./hot-chunks.ts";
import { AnswerGate } from "./answer-gate.ts";
import { IndexCache, type IndexDb } from "./index-cache.ts";
import { SeekableIndexes } from "./seekable-indexes.ts";
import { StartupTraces } from "./startup-traces.ts";
import { SupernodeMetrics } from "./metrics.ts";
import { PreheatJobs } from "./preheat.ts";
import { SwarmSeed, type SwarmSeedInit } from "./swarm-seed.ts";
import { PeerTable } from "./peer-table.ts";
import { toSwarmKey, type SwarmKey } from "@shoal/p2p";
import { trackerMembershipKey } from "@shoal/swarm";
import { baseUrl, closeServer, Lifecycle, listenTcp, MetricsServer, Sampler, type ListenAddress } from "@shoal/service";
import { PeerHealthChecks } from "./peer-health.ts";
import { supernodePage } from "./status-page.ts";

/** Settings of `createSupernode`. */
export interface SupernodeInit {
  /** State directory: `meta/` (LevelDB) and `store/` (chunks). Created if missing. */
  root: string;
  /** Where the API listens. */
  listen: ListenAddress;
  /** Speak http:// to registries. Default false. */
  plainHttp?: boolean;
  /** Chunk store capacity, bytes. Default 20 GiB. */
  cacheSize?: number;
  /**
   * Threads beside the main one that take the API's connections
   * (`ApiThreads`): they spread the chunk answers' socket writes over
   * cores. Default 0: the main thread takes them.
   */
  apiThreads?: number;
  /** Background chunk answers sent at once beside answers callers wait for (`AnswerGate`). Default 2; 0: no limit. */
  backgroundSlots?: number;
  /** Memory for the chunks read or fetched last (`HotChunks`), bytes. Default 256 MiB; 0: none. */
  hotChunkBytes?: number;
  /** Where `/metrics` and the status page (`/`) listen; none when absent. */
  metricsListen?: ListenAddress;
  /** Base URLs of every supernode, this one included, for rendezvous hashing. Empty: it owns every chunk. */
  peers?: string[];
  /** This supernode's base URL as it appears in `peers`. Default: `http://<listen host>:<bound port>`. */
  self?: string;
  /** Tracker entry lifetime without re-announce, ms. Default 60 000. */
  trackerTtlMs?: number;
  /** Retry budget of one origin request, ms. Default 10 000. */
  originRetryMs?: number;
  /**
   * How long a caller's access to a layer, checked with the registry (HEAD
   * blob with the caller's credentials), is trusted, ms. Default 5 min; 0:
   * no checks (anyone who can reach the supernode reads every cached chunk).
   */
  accessTtlMs?: number;
  /** Block size in which byte ranges of any blob are fetched and cached. Default 4 MiB. */
  blobBlockBytes?: number;
  /** Uncompressed bytes between the checkpoints of the seekable indexes it builds. Default 1 MiB. */
  spanSpacing?: number;
  /** When set, only these registries are contacted. */
  allowedRegistries?: string[];
  /** The tracker's bounds: most peers, and most (peer, layer) holdings; past them the oldest announces go. */
  trackerMaxPeers?: number;
  trackerMaxHoldings?: number;
  /** How long a peer must have announced before its reports count, ms (`PeerTableInit.reporterAgeMs`). */
  trackerReporterAgeMs?: number;
  /** Preheat jobs running at once; more are refused (429). Default 16. */
  maxPreheats?: number;
  /** Join the agents' peer swarm (serve cached chunks over libp2p to holders of the swarm key). Off when absent. */
  swarm?: Omit<SwarmSeedInit, "keyFile">;
  /**
   * The swarm key whose members the tracker takes announces and reports from
   * (each sealed with a proof of it). Default: `swarm.swarmKey`. Without
   * either, the tracker takes none (403 SHOAL_ERR_NOT_SWARM_MEMBER).
   */
  trackerSwarmKey?: SwarmKey | Uint8Array;
}

/** A running supernode. */
export interface Supernode {
  /** Base URL of the API, e.g. `http://127.0.0.1:7070`. */
  readonly url: string;
  /** Base URL of the metrics listener, when enabled. */
  readonly metricsUrl: string | undefined;
  /** Its libp2p identity in the peer swarm, when it joined one. */
  readonly peer: { peerId: string; addrs: string[] } | undefined;
  /** Stop listening, abort origin fetches and preheat jobs, close the store and database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a supernode: open its database and chunk store under `init.root`,
 * listen on `init.listen` (and `init.metricsListen`), and serve the API
 * (`/v1/health`, `/v1/chunks/…`, `/v1/announce`, `/v1/peers`,
 * `/v1/preheat`). Resolves once it is ready; on failure everything opened
 * is closed again.
 */
export async function createSupernode(init: SupernodeInit, logger: Logger): Promise<Supernode> {
  const log = logger.child({ component: "supernode" });
  const life = new Lifecycle({ logger: log });
  return life.build(async () => {
    await mkdir(init.root, { recursive: true });
    const level = await openMetadataDb(init.root, "supernode");
    life.defer("database", () => level.close());
    const store = await ChunkStore.open({ db: level, logger }, { root: join(init.root, "store"), capacityBytes: init.cacheSize ?? DEFAULT_CACHE_SIZE });
    life.defer("chunk store", () => store.close());
    const metrics = new SupernodeMetrics();
    const origins = new RegistryClientPool(
      { logger },
      { userAgent: "shoal-supernode/0.1", plainHttp: init.plainHttp === true, maxRetryTimeMs: init.originRetryMs ?? DEFAULT_ORIGIN_RETRY_MS, ...(init.allowedRegistries ? { allowedRegistries: init.allowedRegistries } : {}) },
    );
    life.defer("registry clients", () => origins.close());
    const db: IndexDb & BlockDb = {
      get: async (k) => (await level.get(k)) ?? undefined,
      put: (k, v) => level.put(k, v),
      del: (k) => level.del(k),
      entries: (prefix) => level.iterator({ gte: prefix, lt: `${prefix}\uffff` }),
    };
    const indexes = new IndexCache({ db, origins, logger });
    const access = new AccessCheck({ origins }, init.accessTtlMs !== undefined ? { ttlMs: init.accessTtlMs } : {});
    // the chunk routes and the swarm seed read through memory; blocks and seekable indexes go to the store
    const hot = new HotChunks({ store, observer: metrics }, { maxBytes: init.hotChunkBytes ?? DEFAULT_HOT_CHUNK_BYTES });
    const chunks = new ChunkService({ indexes, cache: hot, origins, logger, observer: metrics, access });
    life.defer("chunk service", () => chunks.close());
    const blobs = new BlobService({ cache: store, db, origins, logger, access, originBytes: (n) => metrics.originBytes(n) }, init.blobBlockBytes !== undefined ? { blockBytes: init.blobBlockBytes } : {});
    life.defer("blob service", () => blobs.close());
    const seekable = new SeekableIndexes({ blobs, cache: store, db, logger, observer: metrics }, init.spanSpacing !== undefined ? { spacing: init.spanSpacing } : {});
    life.defer("seekable indexes", () => seekable.close());
    // block records follow the cache: those of evicted blocks go, at start and every hour
    const traces = new StartupTraces({ db, access, logger, observer: metrics });
    const sweep = () => blobs.sweepRecords().catch((err: unknown) => void log.warn({ err }, "block record sweep failed"));
    await sweep();
    const sweeper = setInterval(() => void sweep(), BLOCK_RECORD_SWEEP_MS).unref();
    life.defer("block record sweeper", () => clearInterval(sweeper));
    const tracker = new PeerTable({}, {
      ...(init.trackerTtlMs !== undefined ? { ttlMs: init.trackerTtlMs } : {}),
      ...(init.trackerMaxPeers !== undefined ? { maxPeers: init.trackerMaxPeers } : {}),
      ...(init.trackerMaxHoldings !== undefined ? { maxHoldings: init.trackerMaxHoldings } : {}),
      ...(init.trackerReporterAgeMs !== undefined ? { reporterAgeMs: init.trackerReporterAgeMs } : {}),
    });
    let ready = false;
    // The handler is attached once `self` is known (the bound port); no request can arrive in between.
    const server = createServer();
    const apiThreads = init.apiThreads ?? 0;
    const bound = await listenTcp(server, init.listen, { reusePort: apiThreads > 0 });
    const url = baseUrl(bound);
    life.defer("API server", () => closeServer(server));
    const preheat = new PreheatJobs({ chunks, seekable, origins, logger, observer: metrics }, { self: init.self ?? url, peers: init.peers ?? [], ...(init.maxPreheats !== undefined ? { maxRunning: init.maxPreheats } : {}) });
    life.defer("preheat jobs", () => preheat.close());
    let seed: SwarmSeed | undefined;
    if (init.swarm) {
      const started = await SwarmSeed.start({ cache: hot, indexes, logger }, { ...init.swarm, keyFile: join(init.root, "peer.key") });
      life.defer("swarm seed", () => started.stop());
      seed = started;
    }
    const swarmKey = init.trackerSwarmKey ?? init.swarm?.swarmKey;
    const trackerKey = swarmKey ? trackerMembershipKey(toSwarmKey(swarmKey).psk) : undefined;
    if (!trackerKey) log.warn("no swarm key: the tracker takes no announces, so agents find no peers through this supernode (give --swarm-key)");
    const api: ApiComponents = { chunks, gate: new AnswerGate({ observer: metrics }, init.backgroundSlots !== undefined ? { slots: init.backgroundSlots } : {}), blobs, seekable, traces, tracker, ...(trackerKey ? { trackerKey } : {}), ...(seed ? { seed } : {}), preheat, logger, served: (n) => metrics.served(n), reported: (r, banned) => {
      metrics.reported(banned);
      log.warn({ reporter: r.reporter, peer: r.peerId, chunk: r.chunk, banned }, "peer reported for a chunk that failed its digest");
    }, answered: (route, seconds) => metrics.answered(route, seconds), ready: () => ready };
    const handler = createApiHandler(api);
    server.on("request", handler);
    if (apiThreads > 0) {
      const threads = await ApiThreads.start(
        { handler, answerChunks: (req, u, signal, sink) => timedAnswerChunks(api, req, u, signal, sink), logger },
        { threads: apiThreads, host: bound.address, port: bound.port, socketPath: join(init.root, "api.sock") },
      );
      life.defer("API threads", () => threads.close());
      // the threads take every connection from now on; the main thread answers what they pass on
      server.close();
    }
    let metricsUrl: string | undefined;
    if (init.metricsListen) {
      const refresh = () => {
        metrics.storeBytes.set(store.stats().bytes);
        metrics.hotChunks(hot.stats());
        const t = tracker.stats();
        metrics.trackerPeers.set(t.peers);
        metrics.trackerHoldings.set(t.holdings);
        metrics.trackerEvicted.set(t.evicted);
        if (seed) metrics.swarm(seed.stats());
      };
      // the status page on the same listener: a chart of the last 5 minutes, one sample a second
      const history = await life.start("page samples", new Sampler({ sample: () => { const t = metrics.totals(); return { origin: t.originBytes, served: t.servedBytes }; } }, { everyMs: 1000, keep: 300 }));
      const health = await life.start("supernode health checks", new PeerHealthChecks({ self: init.self ?? url, peers: init.peers ?? [] }));
      const page = supernodePage({
        url: () => url, store: () => store.stats(), metrics, history, preheat, tracker, access, supernodes: () => health.list(),
        ...(seed ? { swarm: () => ({ peerId: seed.peerId, ...seed.stats() }) } : {}),
      });
      metricsUrl = (await life.start("metrics server", new MetricsServer({ registry: metrics.registry, refresh, page }, { listen: init.metricsListen }))).url;
    }
    ready = true;
    log.info({ url, metricsUrl, peers: init.peers?.length ?? 0, ...(seed ? { peerId: seed.peerId, p2p: seed.addrs } : {}) }, "supernode ready");
    return {
      url,
      metricsUrl,
      peer: seed ? { peerId: seed.peerId, addrs: seed.addrs } : undefined,
      close: async () => {
        ready = false;
        await life.close();
        log.info("supernode closed");
      },
    };
  });
}
