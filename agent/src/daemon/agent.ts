import { InvalidArgumentError } from "@shoal/base";
import { mkdir } from "node:fs/promises";
import type { Server } from "node:http";
import { join } from "node:path";
import { Level } from "level";
import type { ChunkPeer } from "@shoal/p2p";
import type { Logger } from "pino";
import type { AgentConfig } from "../config/agent-config.ts";
import { Fetcher, type ChunkOrigin } from "../fetch/fetcher.ts";
import { ANNOUNCE_CHANGED_MS, ANNOUNCE_EVERY_MS, holdings, PeerOrigin, Tracker } from "../fetch/peer-origin.ts";
import { SupernodeOrigin } from "../fetch/supernode-origin.ts";
import { RegistryOrigin } from "../fetch/registry-origin.ts";
import { LayerFilesystem, unmountPath, isMountpoint } from "../fs/index.ts";
import { ChunkStore } from "@shoal/store";
import { serveApi } from "./api.ts";
import { ImageCatalog } from "./image-catalog.ts";
import { levelKeyValue } from "./kv.ts";
import { AgentMetrics } from "./metrics.ts";
import { MountManager, parseMountRequest } from "./mounts.ts";

/** A running agent. */
export interface Agent {
  readonly config: AgentConfig;
  readonly mounts: MountManager;
  readonly fetcher: Fetcher;
  readonly store: ChunkStore;
  readonly metrics: AgentMetrics;
  /** Status as `shoal status` shows it. */
  status(): Promise<AgentStatus>;
  /** Stop serving: unmount overlays and the FUSE session (mount records are kept for the next start). */
  close(): Promise<void>;
}

/** What `GET /v1/status` answers. */
export interface AgentStatus {
  root: string;
  mounts: ReturnType<MountManager["status"]>["mounts"];
  images: ReturnType<MountManager["status"]>["images"];
  sources: Fetcher["totals"];
  /** Fetches hedged onto a second source because the first was slow. */
  hedges: number;
  store: ReturnType<ChunkStore["stats"]>;
  /** Present when the peer swarm is on. */
  p2p?: { peerId: string; addrs: string[]; connected: number; bytesUploaded: number; uploadsServed: number; uploadsRefused: number; dropped: string[] };
}

/**
 * Wire and start the per-host agent: metadata database, chunk store,
 * fetcher (store → origin registry), the FUSE layer filesystem at
 * `ROOT/layers`, mounts restored from the last run, the control API on
 * `ROOT/agent.sock` and, if configured, Prometheus metrics.
 */
export async function createAgent(config: AgentConfig, logger: Logger): Promise<Agent> {
  const root = config.root;
  await mkdir(root, { recursive: true });
  const layersDir = join(root, "layers");
  // A FUSE mount left by a killed agent answers ENOTCONN: clear it before anything touches it.
  if (await isMountpoint(layersDir)) await unmountPath(layersDir, { lazy: true });
  await mkdir(layersDir, { recursive: true });
  const level = new Level<string, string>(join(root, "meta"), { keyEncoding: "utf8", valueEncoding: "utf8" });
  await level.open();
  const db = levelKeyValue(level);
  const metrics = new AgentMetrics();
  const store = await ChunkStore.open({ db: level, logger }, { root: join(root, "store"), capacityBytes: config.cacheSize });
  const origin = new RegistryOrigin({ logger }, { plainHttp: config.plainHttp, maxRetryTimeMs: Math.max(1000, Math.floor(config.fetchTimeout * 0.75)) });
  // Sources in order: peers (with a swarm key), supernodes, the origin registry.
  const origins: ChunkOrigin[] = [];
  let peer: ChunkPeer | undefined;
  let peers: PeerOrigin | undefined;
  const tracker = config.supernodes.length > 0 ? new Tracker({ logger }, { supernodes: config.supernodes }) : undefined;
  if (config.swarmKey) {
    const { ChunkPeer, readSwarmKey } = await import("@shoal/p2p");
    peer = new ChunkPeer({ provider: store, logger: logger.child({ component: "p2p" }) }, {
      swarmKey: await readSwarmKey(config.swarmKey),
      listen: [config.p2pListen],
      uploadRate: config.uploadRate,
      maxUploads: config.maxUploads,
      keyFile: join(root, "peer.key"),
    });
    await peer.start();
    if (tracker) {
      peers = new PeerOrigin({ peer, tracker, logger });
      origins.push(peers);
    }
  }
  const supernodeOrigin = config.supernodes.length > 0 ? new SupernodeOrigin({}, { supernodes: config.supernodes }) : undefined;
  if (supernodeOrigin) origins.push(supernodeOrigin);
  if (config.originFallback) origins.push(origin);
  if (origins.length === 0) throw new InvalidArgumentError("no chunk source: --origin-fallback=false needs --supernode");
  const fetcher = new Fetcher({ cache: store, origins, logger, observer: metrics }, { timeoutMs: config.fetchTimeout, hedgeMs: config.hedgeDelay });
  const catalog = new ImageCatalog({ db, origin, logger, ...(supernodeOrigin ? { indexSource: supernodeOrigin } : {}) });
  const fs = new LayerFilesystem({ logger }, { mountpoint: layersDir, readAheadKb: Math.max(4, Math.round(config.readAhead / 1024)) });
  await fs.mount();
  const mounts = new MountManager({ catalog, fs, fetcher, store, db, logger, ...(peer ? { sharing: recentlyUploading(peer) } : {}) }, {
    layersDir,
    prefetch: config.prefetch,
    prefetchRate: config.prefetchRate,
    startupWindowMs: config.startupWindow,
  });
  await mounts.restore();

  // Tell the tracker which chunks of which layers this agent holds: at once
  // when mounts change, every second while chunks arrive, else every 10 s.
  let announcer: NodeJS.Timeout | undefined;
  if (peer && tracker) {
    const self = { peerId: peer.peerId, addrs: peer.addrs };
    let lastChunks = -1;
    let lastAt = 0;
    const announce = () => {
      lastChunks = store.stats().chunks;
      lastAt = Date.now();
      return tracker.announce(self, holdings(mounts.layers(), (l, i) => fetcher.has(l, i)));
    };
    await announce();
    mounts.onChange = () => void announce();
    announcer = setInterval(() => {
      if (store.stats().chunks !== lastChunks || Date.now() - lastAt >= ANNOUNCE_EVERY_MS) void announce();
    }, ANNOUNCE_CHANGED_MS);
    announcer.unref();
  }

  const status = async (): Promise<AgentStatus> => {
    const s = mounts.status();
    return {
      root, mounts: s.mounts, images: s.images, sources: fetcher.totals, hedges: fetcher.hedges, store: store.stats(),
      ...(peer ? { p2p: { peerId: peer.peerId, addrs: peer.addrs, connected: peer.connectedPeers(), ...peer.stats(), dropped: [...(peers?.dropped ?? [])] } } : {}),
    };
  };
  const api = await serveApi(join(root, "agent.sock"), {
    "GET /v1/status": () => status(),
    "POST /v1/mounts": (body) => {
      const req = parseMountRequest(body);
      return mounts.mount(req.image, req.mountpoint);
    },
    "GET /v1/startup-order": (_body, query) => mounts.exportStartupOrder(query.get("mountpoint") ?? ""),
    "DELETE /v1/mounts": async (_body, query) => {
      await mounts.unmount(query.get("mountpoint") ?? "");
      return {};
    },
  }, logger);
  let metricsServer: Server | undefined;
  if (config.metricsListen) {
    metricsServer = await metrics.listen(config.metricsListen.host, config.metricsListen.port, () => {
      metrics.storeBytes.set(store.stats().bytes);
      for (const img of mounts.status().images) {
        if (!img.prefetch) continue;
        metrics.prefetchDone.set({ image: img.digest }, img.prefetch.chunksDone);
        metrics.prefetchTotal.set({ image: img.digest }, img.prefetch.chunksTotal);
      }
      for (const [op, n] of Object.entries(fs.counters.ops as Record<string, number>)) metrics.fuseOps.inc({ op }, n - (lastOps[op] ?? 0));
      for (const [op, n] of Object.entries(fs.counters.errors as Record<string, number>)) metrics.fuseErrors.inc({ op }, n - (lastErrors[op] ?? 0));
      if (peer) {
        const st = peer.stats();
        metrics.peersConnected.set(peer.connectedPeers());
        metrics.uploadBytes.inc(st.bytesUploaded - lastUpload);
        lastUpload = st.bytesUploaded;
        metrics.peersDropped.set(peers?.dropped.size ?? 0);
      }
      Object.assign(lastOps, fs.counters.ops);
      Object.assign(lastErrors, fs.counters.errors);
    });
  }
  const lastOps: Record<string, number> = {};
  let lastUpload = 0;
  const lastErrors: Record<string, number> = {};
  logger.info({ root, socket: join(root, "agent.sock"), metrics: config.metricsListen }, "agent ready");

  return {
    config,
    mounts,
    fetcher,
    store,
    metrics,
    status,
    async close() {
      if (announcer) clearInterval(announcer);
      await new Promise<void>((resolve) => api.close(() => resolve()));
      metricsServer?.close();
      await mounts.shutdown();
      await fs.unmount();
      await origin.close();
      await peer?.stop();
      await store.close();
      await level.close();
    },
  };
}

/** How long after its last upload a host still counts as serving its swarm, ms. */
const SHARING_QUIET_MS = 2_000;

/** True while `peer` uploads, and for a short while after its last upload. */
function recentlyUploading(peer: ChunkPeer): () => boolean {
  let lastBytes = -1;
  let lastChange = 0;
  return () => {
    const s = peer.stats();
    if (s.bytesUploaded !== lastBytes) {
      lastBytes = s.bytesUploaded;
      lastChange = Date.now();
    }
    return s.uploadsActive > 0 || Date.now() - lastChange < SHARING_QUIET_MS;
  };
}
