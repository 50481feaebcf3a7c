import { InvalidArgumentError, parseBytes, parseDuration } from "@shoal/base";
import { PUBLIC_REGISTRIES } from "@shoal/oci/constants";
import { parseBool, parseList, parseListen, parsePositiveInt, parseString, type Setting, type SettingsOf } from "@shoal/service/settings";


/** How the agent presents layers: erofs over their streams (block) or per-file FUSE. */
export type LayerMode = "block" | "fuse";

function parseLayerMode(raw: string): LayerMode {
  const v = raw.trim().toLowerCase();
  if (v === "block" || v === "fuse") return v;
  throw new InvalidArgumentError(`--layer-mode takes block or fuse, not ${JSON.stringify(raw)}`);
}

/** Every setting of `shoal agent`: one schema for flags, environment and config file. */
export const AGENT_SETTINGS = {
  root: { flag: "root", env: "SHOAL_ROOT", arg: "DIR", help: "state directory (chunk store, metadata, agent.sock)", default: "/var/lib/shoal", parse: parseString },
  plainHttp: { flag: "plain-http", env: "SHOAL_PLAIN_HTTP", help: "talk to registries over http:// (no TLS)", default: false, parse: parseBool },
  prefetch: { flag: "prefetch", env: "SHOAL_PREFETCH", arg: "on|off", help: "stream whole images in behind the reads", default: true, parse: parseBool },
  prefetchRate: { flag: "prefetch-rate", env: "SHOAL_PREFETCH_RATE", arg: "BYTES_PER_S", help: "cap on background prefetch, compressed bytes per second (k/M/G suffixes)", default: 64 * 1024 * 1024, parse: parseBytes },
  cacheSize: { flag: "cache-size", env: "SHOAL_CACHE_SIZE", arg: "BYTES", help: "chunk store capacity; cold chunks of idle images are evicted beyond it", default: 10 * 1024 ** 3, parse: parseBytes },
  metricsListen: { flag: "metrics-listen", env: "SHOAL_METRICS_LISTEN", arg: "HOST:PORT", help: "serve Prometheus metrics at http://HOST:PORT/metrics and the status page at / (its address with its token: shoal status); keep it on loopback", default: undefined as { host: string; port: number } | undefined, parse: parseListen },
  fetchTimeout: { flag: "fetch-timeout", env: "SHOAL_FETCH_TIMEOUT", arg: "DURATION", help: "give up on a chunk (the read fails with EIO) after this long, e.g. 20s", default: 20_000, parse: parseDuration },
  startupWindow: { flag: "startup-window", env: "SHOAL_STARTUP_WINDOW", arg: "DURATION", help: "how long after a mount reads are recorded as the image's startup order (less when its last mount goes sooner)", default: 10_000, parse: parseDuration },
  wholeFile: { flag: "whole-file", env: "SHOAL_WHOLE_FILE", arg: "BYTES", help: "how much of a file its first read fetches at once when it misses (binaries and libraries are read almost whole); 0: only what is read", default: 8 * 1024 * 1024, parse: parseBytes },
  missWindow: { flag: "miss-window", env: "SHOAL_MISS_WINDOW", arg: "BYTES", help: "a read that misses fetches the aligned BYTES of the layer around it in one request (the small files beside it come along); 0: only the chunks read", default: 256 * 1024, parse: parseBytes },
  layerMode: { flag: "layer-mode", env: "SHOAL_LAYER_MODE", arg: "block|fuse", help: "block: each layer a kernel erofs filesystem over its lazily fetched stream (metadata never reaches the agent); fuse: every lookup, stat and read a FUSE request", default: "block" as LayerMode, parse: parseLayerMode },
  readAhead: { flag: "read-ahead", env: "SHOAL_READ_AHEAD", arg: "BYTES", help: "kernel read-ahead of the per-file lazy filesystem (--layer-mode fuse; block mode reads ahead within each file in erofs); larger reads faster once cached, fetches more while lazy", default: 128 * 1024, parse: parseBytes },
  supernodes: { flag: "supernode", env: "SHOAL_SUPERNODES", arg: "URL,URL,...", help: "datacenter supernodes (chunks by rendezvous hashing; tracker)", default: [] as string[], parse: parseList },
  originFallback: { flag: "origin-fallback", env: "SHOAL_ORIGIN_FALLBACK", arg: "true|false", help: "fetch from the origin registry when peers and supernodes cannot serve a chunk", default: true, parse: parseBool },
  hedgeDelay: { flag: "hedge-delay", env: "SHOAL_HEDGE_DELAY", arg: "DURATION", help: "start the next source when one has not answered a chunk within this long", default: 1_000, parse: parseDuration },
  swarmKey: { flag: "swarm-key", env: "SHOAL_SWARM_KEY", arg: "FILE", help: "cluster pre-shared key (libp2p swarm.key format); enables the peer swarm", default: undefined as string | undefined, parse: parseString },
  p2pListen: { flag: "p2p-listen", env: "SHOAL_P2P_LISTEN", arg: "MULTIADDR", help: "libp2p listen address of the peer swarm", default: "/ip4/0.0.0.0/tcp/7071", parse: parseString },
  uploadRate: { flag: "upload-rate", env: "SHOAL_UPLOAD_RATE", arg: "BYTES_PER_S", help: "cap on chunk bytes served to peers per second", default: 64 * 1024 * 1024, parse: parseBytes },
  maxUploads: { flag: "max-uploads", env: "SHOAL_MAX_UPLOADS", arg: "N", help: "chunks served to peers at once (more are answered busy)", default: 8, parse: parsePositiveInt },
  mirrorListen: { flag: "mirror-listen", env: "SHOAL_MIRROR_LISTEN", arg: "HOST:PORT", help: "serve a registry mirror for engines that pull whole images (e.g. 127.0.0.1:7075); off when unset", default: undefined as { host: string; port: number } | undefined, parse: parseListen },
  mirrorRegistries: { flag: "mirror-registries", env: "SHOAL_MIRROR_REGISTRIES", arg: "HOST,HOST,...", help: "registries (host[:port]) the registry mirror may reach; a request naming another (ns=, path) gets 403 before a connection is made; * allows every host; default: the public registries", default: [...PUBLIC_REGISTRIES] as string[], parse: parseList },
  mirrorDefaultRegistry: { flag: "mirror-default-registry", env: "SHOAL_MIRROR_DEFAULT_REGISTRY", arg: "HOST", help: "registry of mirror requests that name none (Docker's and PouchContainer's registry-mirrors)", default: "docker.io", parse: parseString },
  snapshotterListen: { flag: "snapshotter-listen", env: "SHOAL_SNAPSHOTTER_LISTEN", arg: "SOCKET|off", help: "unix socket of the containerd snapshotter (proxy plugin; default ROOT/snapshotter.sock)", default: "", parse: parseString },
  fuseKeeper: { flag: "fuse-keeper", env: "SHOAL_FUSE_KEEPER", arg: "on|off", help: "keep FUSE connections in a separate process (shoal fuse-keeper) so that mounts and containers survive agent restarts; off: in the agent, they end with it", default: true, parse: parseBool },
  fuseHold: { flag: "fuse-hold", env: "SHOAL_FUSE_HOLD", arg: "DURATION", help: "how long the FUSE keeper holds requests while no agent runs before they fail with EIO; 0 waits for ever", default: 120_000, parse: parseDuration },
  logLevel: { flag: "log-level", env: "SHOAL_LOG_LEVEL", arg: "LEVEL", help: "pino log level (trace, debug, info, warn, error)", default: "info", parse: parseString },
} satisfies Record<string, Setting<unknown>>;

/** Resolved settings of the agent. */
export type AgentConfig = SettingsOf<typeof AGENT_SETTINGS>;
