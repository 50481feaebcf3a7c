/**
 * What the fleet simulator (`fleet.ts`) takes and gives: the policies it
 * calls (shoal's own by default), the scenario it runs, and its outcome.
 */
import { hedgeDelayMs, planPeerRun, prefetchOrder } from "@shoal/fetch";
import { announcePaceMs, rankSupernodes } from "@shoal/swarm";
import { backgroundMayStart } from "@shoal/supernode";

/** The policies the fleet calls; the defaults are shoal's own. Tests swap one to show the outcome follows it. */
export interface FleetPolicies {
  rankSupernodes: (key: string, supernodes: readonly string[]) => string[];
  prefetchOrder: typeof prefetchOrder;
  planPeerRun: typeof planPeerRun;
  announcePaceMs: typeof announcePaceMs;
  backgroundMayStart: typeof backgroundMayStart;
  hedgeDelayMs: typeof hedgeDelayMs;
}

/** shoal's own policies. */
export const SHOAL_POLICIES: FleetPolicies = { rankSupernodes, prefetchOrder, planPeerRun, announcePaceMs, backgroundMayStart, hedgeDelayMs };

/** What is simulated. Sizes in bytes, rates in bytes/s, times in ms. */
export interface FleetScenario {
  hosts: number;
  supernodes: number;
  /** The image: its chunks, all of `chunkBytes` in the blob. */
  chunks: number;
  chunkBytes: number;
  /** Chunks a container reads before its first work (the startup trace), from the first. */
  startupChunks: number;
  hostNic: number;
  supernodeNic: number;
  originEgress: number;
  /** Latency inside the datacenter, and to the origin, ms. */
  dcLatencyMs: number;
  originLatencyMs: number;
  /**
   * CPU per chunk, ms: a host receives one (verify, store), and more when it
   * comes over the peer protocol (libp2p: decryption); a host serves one to
   * a peer; a supernode serves one over HTTP, or over the peer protocol as
   * the swarm's seed; a supernode fetches one from the origin.
   */
  cpuPerChunkMs: number;
  peerReceiveCpuPerChunkMs?: number;
  cpuPerServedChunkMs?: number;
  supernodeCpuPerChunkMs?: number;
  supernodeSeedCpuPerChunkMs?: number;
  supernodeCpuPerOriginChunkMs?: number;
  /** CPU of a mount (pull of the metadata) before a host fetches anything, ms. */
  mountCpuMs?: number;
  /** Cores each host's and supernode's process can keep busy: 1 for Node's one thread (default). */
  processCores?: number;
  /** Cores a supernode's process can keep busy, when not `processCores` (a what-if: all its work on more than one thread). */
  supernodeCores?: number;
  /**
   * A supernode's API threads (`--api-threads`; 0, the default: its main
   * thread holds the connections). With threads, a chunk over HTTP costs
   * `supernodeCpuPerChunkMs` of the main thread and
   * `supernodeThreadCpuPerChunkMs` of one of the threads, each on a core of
   * its own.
   */
  supernodeApiThreads?: number;
  supernodeThreadCpuPerChunkMs?: number;
  /**
   * Every host and supernode on one machine of this many cores (the real
   * runs this simulator is calibrated against: this 2-core machine); absent,
   * each process has its cores to itself.
   */
  sharedCores?: number;
  /** Runs in flight per host: the startup chunks, and the background stream. */
  onDemandInFlight: number;
  backgroundInFlight: number;
  /** How often hosts look whether to announce what they hold to the tracker (the announcer's tick), ms. */
  announceEveryMs: number;
  /** Supernodes whose cache holds the whole image before the start (preheated). */
  preheated: boolean;
  /** Hosts start over this many ms (0: all at once). */
  staggerMs: number;
  /**
   * CPU a supernode spends on one tracker request beside the table's own
   * work (HTTP, the sealed message's signature, JSON), ms: an announce
   * (every supernode takes each), a question for a layer's holders.
   * Default: as measured (`ANNOUNCE_REQUEST_MS`, `QUESTION_REQUEST_MS`).
   */
  announceRequestMs?: number;
  questionRequestMs?: number;
  /** The network's step, ms (default `STEP_MS`): coarser for large fleets. */
  stepMs?: number;
  /** Supernode 0 dies at this time, ms (its streams in flight fail; hosts turn to the next in rank). */
  supernodeLostAtMs?: number;
  /** The tracker lists its supernode as the swarm's seed (as `SwarmSeed` does; default true). */
  seedListed?: boolean;
  /**
   * The image's layers' chunk counts, bottom first, summing to `chunks`
   * (default: one layer); the chunks are numbered across them.
   */
  layerChunks?: readonly number[];
  /**
   * Where host i's prefetch begins each layer: `prefetchFrom[i]`, a real
   * run's, replayed (the agents' status has it); hosts without one draw
   * their own, as the prefetcher does.
   */
  prefetchFrom?: readonly (readonly number[])[];
  seed: number;
}

/** What a run gives. */
export interface FleetOutcome {
  /** Each host's time to first work, ms from its own start, sorted. */
  firstWorkMs: number[];
  /** Each host's time until it held the whole image, ms from its own start, sorted. */
  allLocalPerHostMs: number[];
  /** When every host held the whole image, ms. */
  allLocalMs: number;
  originBytes: number;
  /** Bytes each supernode served to hosts over HTTP. */
  supernodeBytes: number[];
  /** Bytes each supernode served as the swarm's seed (over the peer protocol; counted in `peerBytes` too, as agents count them). */
  seedBytes: number[];
  /** Bytes hosts got over the peer protocol: from each other and from the seed. */
  peerBytes: number;
  /** CPU the supernodes' trackers spent on announces and questions (the real `PeerTable`, timed on this machine), ms. */
  trackerCpuMs: number;
  /** Questions for a layer's holders the trackers answered. */
  questions: number;
  /** Chunks the fetchers' hedged races asked of a supernode too, their peer being slow. */
  hedges: number;
  /** Bytes the hosts asked over HTTP and of peers, by `TIMELINE_BUCKET_MS` of simulated time from the start. */
  timeline: Array<{ supernode: number; peer: number }>;
}

/** The span of one bucket of `FleetOutcome.timeline`, ms. */
export const TIMELINE_BUCKET_MS = 10_000;

/**
 * CPU of a tracker request on a real supernode beside the table's own
 * work, ms: `node bench/src/tracker-http.ts` with 10,000 hosts, a host's
 * announce after its first (a streaming host announces every second):
 * 501 µs; a question: 500 µs; of which the table's own takes about 5 and
 * 40.
 */
export const ANNOUNCE_REQUEST_MS = 0.5;
export const QUESTION_REQUEST_MS = 0.46;
