import { PUBLIC_REGISTRIES } from "@shoal/oci/constants";
import { parseBytes, parseDuration } from "@shoal/base";
import { parseBool, parseList, parseListen, parseNonNegativeInt, parsePositiveInt, parseString, type Setting, type SettingsOf } from "@shoal/service/settings";


/**
 * Every setting of `shoal supernode`: one schema for flags, environment and
 * config file. Here, not in @shoal/supernode, so that the CLI loads no
 * supernode code until `shoal supernode` runs; the command maps these
 * settings onto `createSupernode`'s init.
 */
/**
 * The registries a supernode fetches from unless told otherwise: the public
 * ones most images come from. A datacenter's own registry must be named
 * (`--registries`); `*` allows any host, which also lets anyone who reaches
 * the supernode make it connect anywhere.
 */
export const DEFAULT_REGISTRIES: string[] = [...PUBLIC_REGISTRIES];

export const SUPERNODE_SETTINGS = {
  root: { flag: "root", env: "SHOAL_SUPERNODE_ROOT", arg: "DIR", help: "state directory (chunk cache, indexes)", default: "/var/lib/shoal-supernode", parse: parseString },
  listen: { flag: "listen", env: "SHOAL_SUPERNODE_LISTEN", arg: "HOST:PORT", help: "address of the chunk, tracker and preheat API", default: { host: "127.0.0.1", port: 7070 } as { host: string; port: number }, parse: parseListen },
  advertise: { flag: "advertise", env: "SHOAL_SUPERNODE_ADVERTISE", arg: "URL", help: "this supernode's base URL as agents reach it (default http://LISTEN)", default: undefined as string | undefined, parse: parseString },
  peers: { flag: "supernodes", env: "SHOAL_SUPERNODES", arg: "URL,URL,...", help: "every supernode of the datacenter, this one included, for splitting preheats by rendezvous hashing", default: [] as string[], parse: parseList },
  registries: { flag: "registries", env: "SHOAL_REGISTRIES", arg: "HOST,HOST,...", help: "registries (host[:port]) the supernode may fetch from; any other gets 403 before a connection is made; * allows every host", default: DEFAULT_REGISTRIES, parse: parseList },
  plainHttp: { flag: "plain-http", env: "SHOAL_PLAIN_HTTP", help: "talk to registries over http:// (no TLS)", default: false, parse: parseBool },
  trackerMaxPeers: { flag: "tracker-max-peers", env: "SHOAL_TRACKER_MAX_PEERS", arg: "N", help: "most peers the tracker lists; past it the peers that announced longest ago are dropped", default: 10_000, parse: parsePositiveInt },
  trackerMaxHoldings: { flag: "tracker-max-holdings", env: "SHOAL_TRACKER_MAX_HOLDINGS", arg: "N", help: "most (peer, layer) holdings the tracker keeps over all peers (80 to 140 bytes of memory each), likewise", default: 500_000, parse: parsePositiveInt },
  trackerReporterAge: { flag: "tracker-reporter-age", env: "SHOAL_TRACKER_REPORTER_AGE", arg: "DURATION", help: "how long a peer must have been announcing before its reports of bad bytes count (fresh keys cannot ban an honest peer); each reporter may make 30 a minute", default: 5 * 60_000, parse: parseDuration },
  accessTtl: { flag: "access-ttl", env: "SHOAL_ACCESS_TTL", arg: "DURATION", help: "how long the registry's yes to a caller (its HEAD of a blob with the caller's credentials) is trusted before the supernode asks again; past it, a registry that does not answer within 1.5 s lets a caller it allowed before through; 0s: ask every time", default: 5 * 60_000, parse: parseDuration },
  maxPreheats: { flag: "max-preheats", env: "SHOAL_MAX_PREHEATS", arg: "N", help: "preheat jobs running at once; more are refused with 429 until one finishes", default: 16, parse: parsePositiveInt },
  cacheSize: { flag: "cache-size", env: "SHOAL_CACHE_SIZE", arg: "BYTES", help: "chunk cache capacity (LRU beyond it)", default: 100 * 1024 ** 3, parse: parseBytes },
  apiThreads: { flag: "api-threads", env: "SHOAL_API_THREADS", arg: "N", help: "threads that take the API's connections in the main thread's place, spreading the chunk answers' socket writes over cores (in a peak the startup chunks take a whole core); the cache, tracker and origin fetches stay on the main thread; 0: the main thread takes them", default: 0, parse: parseNonNegativeInt },
  backgroundSlots: { flag: "background-slots", env: "SHOAL_BACKGROUND_SLOTS", arg: "N", help: "background chunk answers (agents' prefetch) sent at once beside answers callers wait for (startup chunks, reads); the next waits for one to end, 2 s at most, so that on a busy supernode hosts that start later wait less behind the prefetch of those running; 0: no limit", default: 2, parse: parseNonNegativeInt },
  hotChunks: { flag: "hot-chunks", env: "SHOAL_HOT_CHUNKS", arg: "BYTES", help: "memory for the chunks read or fetched last, served without touching the disk (in a peak every host asks for the same startup chunks); 0: none", default: 256 * 1024 ** 2, parse: parseBytes },
  spanSpacing: { flag: "span-spacing", env: "SHOAL_SPAN_SPACING", arg: "BYTES", help: "uncompressed bytes between the checkpoints of the seekable indexes built for ordinary gzip layers (smaller: less fetched and inflated per read, more spans and windows)", default: 1024 * 1024, parse: parseBytes },
  metricsListen: { flag: "metrics-listen", env: "SHOAL_METRICS_LISTEN", arg: "HOST:PORT", help: "serve Prometheus metrics at http://HOST:PORT/metrics and the status page at /; keep it on loopback", default: undefined as { host: string; port: number } | undefined, parse: parseListen },
  swarmKey: { flag: "swarm-key", env: "SHOAL_SWARM_KEY", arg: "FILE", help: "cluster pre-shared key (libp2p swarm.key format): the tracker takes announces only from its members; join the agents' peer swarm and serve cached chunks there too", default: undefined as string | undefined, parse: parseString },
  p2pListen: { flag: "p2p-listen", env: "SHOAL_P2P_LISTEN", arg: "MULTIADDR", help: "libp2p listen address in the peer swarm (with --swarm-key)", default: "/ip4/0.0.0.0/tcp/7072", parse: parseString },
  uploadRate: { flag: "upload-rate", env: "SHOAL_UPLOAD_RATE", arg: "BYTES_PER_S", help: "cap on chunk bytes served to peers per second (with --swarm-key)", default: 256 * 1024 * 1024, parse: parseBytes },
  maxUploads: { flag: "max-uploads", env: "SHOAL_MAX_UPLOADS", arg: "N", help: "chunk requests from peers served at once (more are answered busy)", default: 32, parse: parsePositiveInt },
  logLevel: { flag: "log-level", env: "SHOAL_LOG_LEVEL", arg: "LEVEL", help: "pino log level", default: "info", parse: parseString },
} satisfies Record<string, Setting<unknown>>;

/** Resolved settings of a supernode. */
export type SupernodeConfig = SettingsOf<typeof SUPERNODE_SETTINGS>;
