/**
 * Wiring of the per-host agent: the one place its parts are built and
 * connected (spegel's rule). Each part that lives on (servers, timers, the
 * peer) is started through a `Lifecycle`, so a failure half way through
 * start closes what was opened, and `close()` stops everything in reverse.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, ShoalError } from "@shoal/base";
import {
  Announcer, auditSeekableLayer, Fetcher, LocalSeekableIndexSource, PeerSource, RegistryIndexSource, RegistrySource, SupernodeSource, type ChunkPeerLike, type ChunkSource, type FetchStats, type IndexSource, type RemoteLayer, type SeekableIndexSource,
} from "@shoal/fetch";
import { DockerConfigCredentialStore, RegistryClientPool } from "@shoal/oci";
import { baseUrl, closeServer, Lifecycle, listenTcp, MetricsServer, Sampler } from "@shoal/service";
import { RegistryMirror } from "@shoal/registry-proxy";
import { MirrorBlobs } from "./mirror-blobs.ts";
import { createServer } from "node:http";
import { ChunkStore, openMetadataDb } from "@shoal/store";
import { serveSnapshots, SnapshotRecords, Snapshotter } from "@shoal/snapshotter";
import { SupernodeSet, TrackerClient, trackerMembershipKey, type TrackerSigner } from "@shoal/swarm";
import type { Logger } from "pino";
import type { AgentConfig } from "../config/agent-config.ts";
import { BlockLayers } from "../block/block-layers.ts";
import { KernelMounter } from "../block/kernel-mount.ts";
import { answeredRequests, dirsInUse, InProcessMounter, LayerConnections, type FuseMounter } from "../fs/index.ts";
import { KeeperMounter } from "../keeper/keeper-mounter.ts";
import { serveApi } from "./api.ts";
import { ActiveImages } from "./active-images.ts";
import { ImageCatalog } from "./image-catalog.ts";
import { AgentRemoteLayers } from "./remote-layers.ts";
import { levelKeyValue } from "./kv.ts";
import { AgentMetrics } from "./metrics.ts";
import { MountManager, parseMountRequest } from "./mounts.ts";
import { agentPage, pageToken, sourceSample } from "./status-page.ts";

/** A running agent. */
export interface Agent {
  readonly config: AgentConfig;
  readonly mounts: MountManager;
  readonly fetcher: Fetcher;
  readonly store: ChunkStore;
  readonly metrics: AgentMetrics;
  /** Status as `shoal status` shows it. */
  status(): Promise<AgentStatus>;
  /**
   * Stop serving. With the FUSE keeper, mounts stay (the keeper holds their
   * requests for the next agent) unless nothing uses the FUSE session; without
   * it, overlays and the FUSE session are unmounted. Records are kept for the
   * next start either way.
   */
  close(): Promise<void>;
  /** Settles only if the agent can no longer serve (the FUSE keeper went away): the caller should exit, and a restart restores. */
  readonly failed: Promise<Error>;
}

/** What `GET /v1/status` answers. */
export interface AgentStatus {
  root: string;
  mounts: ReturnType<MountManager["status"]>["mounts"];
  images: ReturnType<MountManager["status"]>["images"];
  sources: FetchStats["sources"];
  /** Fetches hedged onto a second source because the first was slow. */
  hedges: number;
  store: ReturnType<ChunkStore["stats"]>;
  /** How layers are presented, and what the layer filesystem has answered since the agent started. */
  layers: {
    mode: "block" | "fuse";
    /** Layers mounted as erofs now (block mode; the rest are served per file). */
    block: number;
    /** Of those, layers read from local stream files only: no FUSE request at all. */
    local: number;
    /** FUSE requests answered (the kernel's forget notices are not counted): every one in per-file mode; in block mode the streams' reads (and lookups of them). */
    requests: number;
    reads: number;
  };
  /** The registry mirror's base URL, when `--mirror-listen` is set. */
  mirror?: string;
  /** The status page, with its token (`#token=`), when `--metrics-listen` is set. */
  page?: string;
  /** Present when the peer swarm is on. */
  p2p?: {
    peerId: string; addrs: string[]; connected: number; bytesUploaded: number; uploadsServed: number; uploadsRefused: number; dropped: string[];
    /** Chunk bytes exchanged with each peer, most recently active first. */
    peers: Array<{ peerId: string; bytesUp: number; bytesDown: number; last: number }>;
  };
}

/** The part of the libp2p chunk peer the agent wires in (`@shoal/p2p` `ChunkPeer`, loaded only with a swarm key). */
interface SwarmPeer extends ChunkPeerLike {
  start(): Promise<void>;
  stop(): Promise<void>;
  connectedPeers(): number;
  peerTraffic(): Array<{ peerId: string; bytesUp: number; bytesDown: number; last: number }>;
  stats(): { bytesUploaded: number; uploadsServed: number; uploadsRefused: number; uploadsActive: number };
}

/**
 * Start the per-host agent: metadata database, chunk store, the sources in
 * fetch order (peers with a swarm key, supernodes, the origin registry),
 * the fetcher, the FUSE layer filesystem at `ROOT/layers`, mounts restored
 * from the last run, the tracker announcer, the control API on
 * `ROOT/agent.sock` and, if configured, Prometheus metrics.
 */
export async function createAgent(config: AgentConfig, logger: Logger, components: { keeperCommand?: readonly string[] } = {}): Promise<Agent> {
  const life = new Lifecycle({ logger });
  let started = false;
  let fail: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((res) => (fail = res));
  return life.build(async () => {
    const root = config.root;
    await mkdir(root, { recursive: true });
    const layersDir = join(root, "layers");
    const level = await openMetadataDb(root, "agent");
    life.defer("database", () => level.close());
    const db = levelKeyValue(level);
    const metrics = new AgentMetrics();
    const store = await ChunkStore.open({ db: level, logger }, { root: join(root, "store"), capacityBytes: config.cacheSize });
    life.defer("chunk store", () => store.close());
    const clients = new RegistryClientPool({ logger }, { userAgent: "shoal-agent/0.1", plainHttp: config.plainHttp, maxRetryTimeMs: Math.max(1000, Math.floor(config.fetchTimeout * 0.75)), responseTimeoutMs: config.fetchTimeout });
    life.defer("registry clients", () => clients.close());

    const supernodes = config.supernodes.length > 0 ? new SupernodeSet({ urls: config.supernodes }) : undefined;
    const swarm = config.swarmKey ? await swarmPeer(config, store, logger) : undefined;
    const peer = swarm ? await life.start("chunk peer", swarm.peer) : undefined;
    const tracker = supernodes && swarm ? new TrackerClient({ supernodes, logger, signer: swarm.signer, membershipKey: swarm.membershipKey }) : undefined;
    const peers = peer && tracker ? new PeerSource({ peer, tracker, logger }) : undefined;
    // the host's registry credentials go with each request, for the supernode's access check of private images
    const hostCredentials = new DockerConfigCredentialStore({ logger });
    const supernodeSource = supernodes ? new SupernodeSource({ supernodes, credentials: hostCredentials }) : undefined;
    const sources: ChunkSource[] = [
      ...(peers ? [peers] : []),
      ...(supernodeSource ? [supernodeSource] : []),
      ...(config.originFallback ? [new RegistrySource({ clients })] : []),
    ];
    if (sources.length === 0) throw new InvalidArgumentError("no chunk source: --origin-fallback=false needs --supernode");
    const fetcher = new Fetcher({ cache: store, sources, logger, observer: metrics }, { timeoutMs: config.fetchTimeout, hedgeMs: config.hedgeDelay, missWindowBytes: config.missWindow });
    life.defer("chunk writes", () => fetcher.drain());
    const indexSources: IndexSource[] = [...(supernodeSource ? [supernodeSource] : []), new RegistryIndexSource({ clients })];
    // ordinary layers: the supernodes build seekable indexes; with none (or none answering), this host reads the blob whole
    const seekableSources: SeekableIndexSource[] = [...(supernodeSource ? [supernodeSource] : []), new LocalSeekableIndexSource({ clients })];
    const catalog = new ImageCatalog({ db, clients, indexSources, seekableSources, logger });

    const mounter = fuseMounter(config, logger, components.keeperCommand, fail);
    life.defer("FUSE mounter", () => mounter.close());
    // layers without xattrs on a connection of their own, which the kernel stops asking for xattrs
    // block mode: erofs reads ahead within each file itself; the streams' own read-ahead would run into the
    // next files (fetching their chunks, and spoiling the startup trace), so it is one page
    const readAheadKb = config.layerMode === "block" ? 4 : Math.max(4, Math.round(config.readAhead / 1024));
    const fs = new LayerConnections({ logger, mounter }, { mountpoint: layersDir, plainMountpoint: join(root, "layers-plain"), readAheadKb });
    await fs.mount();
    // Kept across a stop only where it can outlive this process, only once started, only while in use.
    const keep = () => config.fuseKeeper && started && fs.layerCount > 0;
    life.defer("layer filesystem", () => (keep() ? fs.detach() : fs.unmount()));
    // block mode: each layer an erofs filesystem over its stream (unmounted before the FUSE connections, kept with them)
    const kernel = new KernelMounter();
    life.defer("mount thread", () => kernel.close());
    const block = config.layerMode === "block" ? new BlockLayers({ inner: fs, mounter: kernel, logger }, { imageDir: join(root, "erofs"), mountDir: join(root, "layers-block"), streamDir: join(root, "streams") }) : undefined;
    if (block) {
      life.defer("block-mode layers", () => (keep() ? Promise.resolve() : block.unmountAll()));
      await block.start();
    }
    // a seekable layer's index is checked against its blob once every span is local; a forged one condemns the layer
    const audit = async (layer: RemoteLayer): Promise<void> => {
      try {
        await auditSeekableLayer(layer, (d) => store.readCompressed(d));
      } catch (err) {
        if (err instanceof ShoalError && err.code === "SHOAL_ERR_BAD_INDEX") {
          fetcher.condemn(layer.digest, err);
          metrics.recent.add(err.message);
          await catalog.forgetSeekable(layer.digest);
        }
        throw err;
      }
    };
    const images = new ActiveImages({
      fs: block ?? fs, fetcher, store, db, logger, audit, indexOrigin: (l) => catalog.seekableOrigin.get(l), ...(peer ? { sharing: recentlyUploading(peer) } : {}),
      ...(supernodeSource ? { traces: supernodeSource } : {}),
    }, {
      prefetch: config.prefetch,
      prefetchRate: config.prefetchRate,
      startupWindowMs: config.startupWindow,
      wholeFileBytes: config.wholeFile,
    });
    const mounts = new MountManager({ catalog, images, db, logger }, { root });
    // what the registry mirror assembles itself: converted images' layers, through the fetch path
    const mirrorBlobs = config.mirrorListen ? new MirrorBlobs({ catalog, fetcher, store, clients, logger, ...(supernodes ? { supernodes } : {}), ...(peers ? { peers } : {}) }) : undefined;
    life.defer("mounts", () => mounts.shutdown(!keep()));

    // containerd's snapshotter: remote snapshots of lazy layers, ordinary ones for the rest
    const snapshotter = new Snapshotter(
      { records: new SnapshotRecords({ db }), mounts: { inUse: dirsInUse }, logger, remote: new AgentRemoteLayers({ catalog, images, store }, { ordinary: supernodeSource !== undefined }) },
      { root: join(root, "snapshots"), remoteTimeoutMs: config.fetchTimeout },
    );
    // Restart: every layer in use back in the FUSE session before it serves (an adopted
    // connection's held requests name their node ids), then the overlays, which read it.
    await mounts.restoreLayers();
    await snapshotter.restore();
    mounter.ready();
    await mounts.restoreOverlays(fs.adopted);
    const snapshotterSocket = config.snapshotterListen === "off" ? undefined : config.snapshotterListen || join(root, "snapshotter.sock");
    if (snapshotterSocket) {
      const served = await serveSnapshots(snapshotter, snapshotterSocket, logger);
      life.defer("snapshots API", () => served.close());
    }

    if (peer && tracker) {
      const announcer = new Announcer({
        tracker, self: { peerId: peer.peerId, addrs: peer.addrs }, layers: () => [...mounts.layers(), ...(mirrorBlobs?.layers() ?? [])], has: (l, i) => fetcher.has(l, i), version: () => store.stats().chunks,
      });
      await life.start("announcer", announcer);
      mounts.onChange = () => void announcer.announce();
    }

    let mirrorUrl: string | undefined;
    if (config.mirrorListen) {
      const mirror = new RegistryMirror({ logger, ...(supernodes ? { supernodes } : {}), credentials: hostCredentials, local: mirrorBlobs!, observer: metrics }, {
        plainHttp: config.plainHttp, userAgent: "shoal-agent/0.1", defaultRegistry: config.mirrorDefaultRegistry, registries: config.mirrorRegistries,
      });
      const server = createServer(mirror.handler());
      mirrorUrl = baseUrl(await listenTcp(server, config.mirrorListen));
      if (!isLoopback(config.mirrorListen.host)) {
        logger.warn({ listen: mirrorUrl, registries: config.mirrorRegistries }, `THE REGISTRY MIRROR LISTENS BEYOND LOOPBACK (${mirrorUrl}): anyone who reaches it can make this agent fetch from ${config.mirrorRegistries.includes("*") ? "ANY host" : `the registries of --mirror-registries (${config.mirrorRegistries.join(", ")})`}; bind it to 127.0.0.1 unless engines on other hosts use it`);
      }
      life.defer("registry mirror", () => closeServer(server));
    }

    let pageUrl: string | undefined;
    const status = async (): Promise<AgentStatus> => {
      const s = mounts.status();
      const f = fetcher.stats();
      return {
        root, mounts: s.mounts, images: s.images, sources: f.sources, hedges: f.hedges, store: store.stats(),
        layers: { mode: config.layerMode, block: block?.blockLayerCount ?? 0, local: block?.localLayerCount ?? 0, requests: answeredRequests(fs.counters), reads: fs.counters.ops.read ?? 0 },
        ...(mirrorUrl ? { mirror: mirrorUrl } : {}),
        ...(pageUrl ? { page: pageUrl } : {}),
        ...(peer ? { p2p: { peerId: peer.peerId, addrs: peer.addrs, connected: peer.connectedPeers(), ...peer.stats(), dropped: peers?.droppedPeers() ?? [], peers: peer.peerTraffic() } } : {}),
      };
    };
    const api = await serveApi(join(root, "agent.sock"), {
      "GET /v1/status": () => status(),
      "POST /v1/mounts": (body) => {
        const req = parseMountRequest(body);
        return mounts.mount(req.image, req.mountpoint, { force: req.force });
      },
      "GET /v1/startup-order": (_body, query) => mounts.exportStartupOrder(query.get("mountpoint") ?? ""),
      "DELETE /v1/mounts": async (_body, query) => {
        await mounts.unmount(query.get("mountpoint") ?? "");
        return {};
      },
    }, logger);
    life.defer("control API", () => new Promise<void>((resolve) => api.close(() => resolve())));

    if (config.metricsListen) {
      const refresh = metrics.scraper({
        storeBytes: () => store.stats().bytes,
        images: () => mounts.status().images,
        fuse: () => fs.counters as { ops: Record<string, number>; errors: Record<string, number> },
        ...(peer ? { swarm: () => ({ connected: peer.connectedPeers(), bytesUploaded: peer.stats().bytesUploaded, dropped: peers?.droppedPeers().length ?? 0 }) } : {}),
      });
      // the status page on the same listener: bytes by source over 5 minutes, one sample a second
      const history = await life.start("page samples", new Sampler({ sample: () => sourceSample(fetcher.stats().sources) }, { everyMs: 1000, keep: 300 }));
      const token = await pageToken(root);
      const page = agentPage({
        mounts: () => mounts.status(),
        snapshots: () => snapshotter.list([]),
        sources: () => fetcher.stats().sources,
        history,
        store: () => store.stats(),
        errors: () => metrics.recent.list(),
        ...(mirrorUrl ? { mirror: mirrorUrl } : {}),
        ...(peer ? { swarm: () => ({ peerId: peer.peerId, connected: peer.connectedPeers(), peers: peer.peerTraffic().slice(0, 50) }) } : {}),
      }, token);
      const server = await life.start("metrics server", new MetricsServer({ registry: metrics.registry, refresh, page }, { listen: config.metricsListen }));
      pageUrl = `${server.url}/#token=${token}`;
    }
    logger.info({ root, socket: join(root, "agent.sock"), snapshotter: snapshotterSocket, metrics: config.metricsListen, mirror: mirrorUrl, fuseKeeper: config.fuseKeeper, adopted: fs.adopted }, "agent ready");
    started = true;
    return { config, mounts, fetcher, store, metrics, status, close: () => life.close(), failed };
  });
}

/** Where the FUSE connections live: the keeper (started with `keeperCommand` when none answers), or this process. */
function fuseMounter(config: AgentConfig, logger: Logger, keeperCommand: readonly string[] | undefined, fail: (err: Error) => void): FuseMounter {
  if (!config.fuseKeeper) return new InProcessMounter({ logger });
  const socket = join(config.root, "fuse-keeper.sock");
  const command = [
    ...(keeperCommand ?? [process.execPath, ...process.execArgv, process.argv[1]!, "fuse-keeper"]),
    "--socket", socket, "--hold", `${config.fuseHold}ms`, "--pid-file", join(config.root, "fuse-keeper.pid"), "--log-level", config.logLevel,
  ];
  const mounter = new KeeperMounter({ logger }, { socket, command, logFile: join(config.root, "fuse-keeper.log") });
  mounter.onLost = fail;
  return mounter;
}

/**
 * The libp2p chunk peer, serving the store, and what seals its tracker
 * messages (its own key; the swarm key's membership key). libp2p is loaded
 * only here, only with a swarm key.
 */
async function swarmPeer(config: AgentConfig, store: ChunkStore, logger: Logger): Promise<{ peer: SwarmPeer; signer: TrackerSigner; membershipKey: Uint8Array }> {
  const { ChunkPeer, loadOrCreatePeerKey, readSwarmKey } = await import("@shoal/p2p");
  const swarmKey = await readSwarmKey(config.swarmKey!);
  const privateKey = await loadOrCreatePeerKey(join(config.root, "peer.key"));
  const peer = new ChunkPeer({ provider: store, logger: logger.child({ component: "p2p" }) }, {
    swarmKey,
    listen: [config.p2pListen],
    uploadRate: config.uploadRate,
    maxUploads: config.maxUploads,
    privateKey,
  });
  const signer: TrackerSigner = { get peerId() { return peer.peerId; }, sign: (data) => privateKey.sign(data) };
  return { peer, signer, membershipKey: trackerMembershipKey(swarmKey.psk) };
}

/** How long after its last upload a host still counts as serving its swarm, ms. */
const SHARING_QUIET_MS = 2_000;

/** True while `peer` uploads, and for a short while after its last upload. */
function recentlyUploading(peer: SwarmPeer): () => boolean {
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

/** Whether `host` (a listen address) is this host's loopback only. */
function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\./.test(host);
}
