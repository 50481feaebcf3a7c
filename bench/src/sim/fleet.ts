/**
 * A fleet starting containers of one image, simulated: hosts, supernodes
 * and the origin registry on a network of links (`network.ts`). Their
 * choices are shoal's own code, imported, not rewritten:
 *
 * - which supernode owns a chunk: `rankSupernodes` (swarm's rendezvous
 *   hashing), the first that is up;
 * - which peers hold a chunk: the tracker's `PeerTable` (supernode), fed by
 *   the hosts' announces (`encodeChunkBitmap`), with its caps and sampling;
 * - the prefetcher's order (`prefetchOrder`): the startup chunks (the
 *   trace) first, then the rest from a random chunk, wrapping around;
 * - on-demand before background: a host fetches its startup chunks each an on-demand fetch in the agent's `DemandActivity`;
 *   the rest streams in only while that says the host is not busy
 *   (`QUIET_MS`), or one chunk per `MAX_YIELD_MS` beside the reads, as the
 *   prefetcher does.
 *
 * A chunk is fetched from a peer that holds it when the tracker names one,
 * else from its owning supernode, which fetches it from the origin once for
 * all its callers. CPU is work on processors: per chunk received (verify,
 * store), per chunk served to a peer, per chunk a supernode serves, on each
 * machine's own cores, or on one machine's shared cores (`sharedCores`: how
 * the real runs on this 2-core machine are). One layer, one datacenter (no
 * racks), no upload caps yet.
 */
import { createHash } from "node:crypto";
import { DemandActivity } from "@shoal/base";
import { MAX_YIELD_MS, prefetchOrder, QUIET_MS } from "@shoal/fetch";
import { encodeChunkBitmap, rankSupernodes } from "@shoal/swarm";
import { PeerTable } from "@shoal/supernode";
import { EventQueue } from "./events.ts";
import { Network, type Link } from "./network.ts";

/** The policies the fleet calls; the defaults are shoal's own. Tests swap one to show the outcome follows it. */
export interface FleetPolicies {
  rankSupernodes: (key: string, supernodes: readonly string[]) => string[];
  prefetchOrder: typeof prefetchOrder;
}

/** What is simulated. Sizes in bytes, rates in bytes/s, times in ms. */
export interface FleetScenario {
  hosts: number;
  supernodes: number;
  /** The image: its chunks, all of `chunkBytes`. */
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
  /** CPU per chunk a host receives (verify, store), per chunk it serves a peer, and per chunk a supernode serves, ms. */
  cpuPerChunkMs: number;
  cpuPerServedChunkMs?: number;
  supernodeCpuPerChunkMs?: number;
  /** Cores of each host and supernode. */
  coresPerHost?: number;
  /**
   * Every host and supernode on one machine of this many cores (the real
   * runs this simulator is calibrated against: this 2-core machine); absent,
   * each has its own `coresPerHost`.
   */
  sharedCores?: number;
  /** Fetches in flight per host: on demand, and in the background. */
  onDemandInFlight: number;
  backgroundInFlight: number;
  /** How often hosts announce what they hold to the tracker, ms. */
  announceEveryMs: number;
  /** Supernodes whose cache holds the whole image before the start (preheated). */
  preheated: boolean;
  /** Hosts start over this many ms (0: all at once). */
  staggerMs: number;
  seed: number;
}

/** What a run gives. */
export interface FleetOutcome {
  /** Each host's time to first work, ms from its own start, sorted. */
  firstWorkMs: number[];
  /** When every host held the whole image, ms. */
  allLocalMs: number;
  originBytes: number;
  /** Bytes each supernode served to hosts. */
  supernodeBytes: number[];
  /** Bytes hosts served each other. */
  peerBytes: number;
}

interface Host {
  id: string;
  up: Link;
  down: Link;
  cpu: Link;
  held: boolean[];
  count: number;
  /** Of `count`, the startup chunks: first work once all are here. */
  startupHeld: number;
  startedAt: number;
  firstWorkAt: number | undefined;
  /** The chunks in the order this host fetches them, and how far it got. */
  order: number[];
  next: number;
  inFlight: number;
  demand: DemandActivity;
  /** When a background fetch may go on beside reads again; a re-pump is scheduled. */
  trickleAt: number;
  repump: boolean;
}

interface Supernode {
  url: string;
  up: Link;
  down: Link;
  cpu: Link;
  held: boolean[];
  waiting: Map<number, Array<() => void>>;
  served: number;
}

const LAYER = `sha256:${"1".repeat(64)}`;
/** How often a yielding host looks again whether its reads have gone quiet, ms (the prefetcher's poll). */
const POLL_MS = 100;

/** Run `s` with `policies` (shoal's own by default). */
export function simulateFleet(s: FleetScenario, policies: FleetPolicies = { rankSupernodes, prefetchOrder }): FleetOutcome {
  const events = new EventQueue();
  const net = new Network(events);
  let seed = s.seed >>> 0 || 1;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const digests = Array.from({ length: s.chunks }, (_, c) => `sha256:${createHash("sha256").update(`chunk ${c}`).digest("hex")}`);
  const origin = net.link("origin", s.originEgress);
  const shared = s.sharedCores !== undefined ? net.link("machine-cpu", s.sharedCores) : undefined;
  const cpu = (name: string) => shared ?? net.link(name, s.coresPerHost ?? 2);
  /** `ms` of CPU on `on` (one core at most), then `then`. */
  const work = (on: Link, ms: number, then: () => void) => (ms > 0 ? net.send([on], ms / 1000, 0, then, 1) : then());
  const supernodes: Supernode[] = Array.from({ length: s.supernodes }, (_, k) => ({
    url: `http://supernode-${k}:7070`, up: net.link(`sn${k}-up`, s.supernodeNic), down: net.link(`sn${k}-down`, s.supernodeNic), cpu: cpu(`sn${k}-cpu`),
    held: Array<boolean>(s.chunks).fill(s.preheated), waiting: new Map(), served: 0,
  }));
  const byUrl = new Map(supernodes.map((n) => [n.url, n]));
  const urls = supernodes.map((n) => n.url);
  const tracker = new PeerTable({ now: () => events.now }, { ttlMs: 10 * s.announceEveryMs });
  const hosts: Host[] = Array.from({ length: s.hosts }, (_, i) => ({
    id: `host-${i}`, up: net.link(`h${i}-up`, s.hostNic), down: net.link(`h${i}-down`, s.hostNic), cpu: cpu(`h${i}-cpu`),
    held: Array<boolean>(s.chunks).fill(false), count: 0, startupHeld: 0, startedAt: 0, firstWorkAt: undefined, next: 0, inFlight: 0,
    order: policies.prefetchOrder([s.chunks], Array.from({ length: s.startupChunks }, (_, c): [number, number] => [0, c]), { random: rand }).order.map(([, c]) => c),
    demand: new DemandActivity({ now: () => events.now }), trickleAt: 0, repump: false,
  }));
  const byId = new Map(hosts.map((h) => [h.id, h]));
  let peerBytes = 0;
  let allLocal = 0;

  /** The supernode has chunk `c` (from the origin once), then `then`. */
  const atSupernode = (n: Supernode, c: number, then: () => void) => {
    if (n.held[c]) return then();
    const waiting = n.waiting.get(c);
    if (waiting) return void waiting.push(then);
    n.waiting.set(c, [then]);
    net.send([origin, n.down], s.chunkBytes, s.originLatencyMs, () => {
      n.held[c] = true;
      for (const w of n.waiting.get(c)!) w();
      n.waiting.delete(c);
    });
  };

  const arrived = (h: Host, c: number, ended: () => void) => {
    work(h.cpu, s.cpuPerChunkMs, () => {
      ended();
      h.held[c] = true;
      h.count++;
      h.inFlight--;
      if (c < s.startupChunks) h.startupHeld++;
      if (h.firstWorkAt === undefined && h.startupHeld === s.startupChunks) h.firstWorkAt = events.now;
      if (h.count === s.chunks) allLocal = Math.max(allLocal, events.now);
      pump(h);
    });
  };

  const fetchChunk = (h: Host, c: number) => {
    h.inFlight++;
    const ended = c < s.startupChunks ? h.demand.begin() : () => undefined;
    const holders = tracker.peers(LAYER, c).filter((p) => p.peerId !== h.id);
    if (holders.length > 0) {
      const peer = byId.get(holders[Math.floor(rand() * holders.length)]!.peerId)!;
      peerBytes += s.chunkBytes;
      return work(peer.cpu, s.cpuPerServedChunkMs ?? 0, () => net.send([peer.up, h.down], s.chunkBytes, s.dcLatencyMs, () => arrived(h, c, ended)));
    }
    const owner = byUrl.get(policies.rankSupernodes(digests[c]!, urls)[0]!)!;
    atSupernode(owner, c, () => {
      owner.served += s.chunkBytes;
      work(owner.cpu, s.supernodeCpuPerChunkMs ?? 0, () => net.send([owner.up, h.down], s.chunkBytes, s.dcLatencyMs, () => arrived(h, c, ended)));
    });
  };

  /** Keep the host's fetches in flight: its startup chunks first, then the rest in order, yielding to the reads. */
  const pump = (h: Host) => {
    while (h.next < s.startupChunks && h.inFlight < s.onDemandInFlight) fetchChunk(h, h.order[h.next++]!);
    while (h.next >= s.startupChunks && h.next < s.chunks && h.inFlight < s.backgroundInFlight) {
      if (h.demand.busy(QUIET_MS)) {
        if (events.now < h.trickleAt) {
          if (!h.repump) {
            h.repump = true;
            events.after(POLL_MS, () => {
              h.repump = false;
              pump(h);
            });
          }
          return;
        }
        h.trickleAt = events.now + MAX_YIELD_MS;
      }
      fetchChunk(h, h.order[h.next++]!);
    }
  };

  const announce = () => {
    for (const h of hosts) {
      if (h.count === 0 || h.startedAt > events.now) continue;
      tracker.announce({ peerId: h.id, addrs: [h.id], layers: [LAYER], chunks: { [LAYER]: encodeChunkBitmap(s.chunks, (c) => h.held[c] === true) } });
    }
    if (hosts.some((h) => h.count < s.chunks)) events.after(s.announceEveryMs, announce);
  };

  for (const h of hosts) {
    h.startedAt = s.staggerMs > 0 ? Math.floor(rand() * s.staggerMs) : 0;
    events.after(h.startedAt, () => pump(h));
  }
  events.after(s.announceEveryMs, announce);
  events.run();
  return {
    firstWorkMs: hosts.map((h) => (h.firstWorkAt ?? Number.NaN) - h.startedAt).sort((a, b) => a - b),
    allLocalMs: allLocal,
    originBytes: origin.carried,
    supernodeBytes: supernodes.map((n) => n.served),
    peerBytes,
  };
}
