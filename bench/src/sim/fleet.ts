/**
 * A fleet starting containers of one image, simulated: hosts, supernodes
 * and the origin registry on a network of links (`network.ts`). Their
 * choices are shoal's own code, imported, not rewritten:
 *
 * - which supernode owns a chunk: `rankSupernodes` (swarm's rendezvous
 *   hashing), the first that is up; a run is split where the owner changes,
 *   as `SupernodeSource` does;
 * - which peers hold a chunk: the tracker's `PeerTable` (supernode), fed by
 *   the hosts' announces (`encodeChunkBitmap`), at the pace the tracker
 *   asks (`announcePaceMs`), every `announceEveryMs` at most,
 *   each host asking it for a layer's holders at most every
 *   `PEER_LIST_TTL_MS` and using the list it has meanwhile (`PeerSource`),
 *   each question costing the tracker's supernode the CPU the real
 *   `PeerTable.peers` took to answer it on this machine, and the request's
 *   own (`questionRequestMs`);
 *   the tracker lists itself too, as the swarm's seed, holding what its
 *   cache holds (as the supernode's `SwarmSeed` does); every supernode pays
 *   the CPU the real `PeerTable.announce` took for each announce, and the
 *   request's own (`announceRequestMs`);
 *   whom a run is asked of among them: `planPeerRun`; a run goes to the
 *   peers when every chunk of it has a holder, else to the supernodes
 *   (`Fetcher`'s first source that can serve the whole run); a busy
 *   holder's chunks of a run (what the others sent is kept) are then
 *   fetched alone in the fetcher's own hedged race (`runHedgedRace`): from one of
 *   two random holders, the supernode asked too once the peer is slower
 *   than `hedgeDelayMs` of the host's average peer latency
 *   (`latencyAverage`), or at once when it is busy;
 * - the prefetcher's order (`prefetchOrder`; its random draw of where each
 *   layer begins, or a real run's, replayed) and its requests: the startup
 *   chunks as `startupRuns`, `STARTUP_CONCURRENCY` at once, then the rest
 *   as `takeRun` takes them, `PREFETCH_CONCURRENCY` at once (numbered
 *   across the layers, a run may span two);
 * - on-demand before background: the startup runs count as reads in the
 *   agent's `DemandActivity`; the rest streams in only while that says the
 *   host is not busy (`QUIET_MS`), or one run per `MAX_YIELD_MS` beside the
 *   reads, as the prefetcher does; at a supernode, a background answer
 *   waits its turn while on-demand ones are sent, at its `AnswerGate` (on
 *   the simulated clock, with the policy's `backgroundMayStart`).
 *
 * A run streams: its chunks cross the path one after another, each one's
 * CPU on arrival (verify, store) overlapping the next one's transfer. A
 * supernode that lacks chunks of a run fetches them from the origin in one
 * streamed request, once for all its callers. CPU is work on processors:
 * per chunk received, per chunk served to a peer, per chunk a supernode
 * serves, and a mount's work, on each machine's own cores, or on one machine's shared cores (`sharedCores`:
 * how the real runs on this 2-core machine are). The layers' chunks
 * numbered as one, one datacenter (no racks), no upload caps. The scenario,
 * the policies and the outcome are in `fleet-scenario.ts`.
 */
import { createHash } from "node:crypto";
import { DemandActivity, type After } from "@shoal/base";
import { DEFAULT_HEDGE_MS, latencyAverage, MAX_RUN_BYTES, MAX_YIELD_MS, PEER_LIST_TTL_MS, QUIET_MS, runHedgedRace, startupRuns, takeRun, type ChunkPos, type Run } from "@shoal/fetch";
import { ANNOUNCE_EVERY_MS, bitmapHas, PEERS_TIMEOUT_MS, decodeChunkBitmap, encodeChunkBitmap, type Holder } from "@shoal/swarm";
import { DEFAULT_MAX_UPLOADS } from "@shoal/p2p";
import { AnswerGate, DEFAULT_TRACKER_TTL_MS, PeerTable } from "@shoal/supernode";
import { EventQueue } from "./events.ts";
import { Network, type Leg, type Link } from "./network.ts";
import { ANNOUNCE_REQUEST_MS, QUESTION_REQUEST_MS, SHOAL_POLICIES, TIMELINE_BUCKET_MS, type FleetOutcome, type FleetPolicies, type FleetScenario } from "./fleet-scenario.ts";

interface Host {
  id: string;
  up: Link;
  down: Link;
  cpu: Link;
  held: boolean[];
  /** Chunks asked for and not yet arrived: another request for them waits instead. */
  asked: boolean[];
  count: number;
  /** Of `count`, the startup chunks: first work once all are here. */
  startupHeld: number;
  startedAt: number;
  firstWorkAt: number | undefined;
  allLocalAt: number | undefined;
  startup: Run[];
  queue: ChunkPos[];
  demand: DemandActivity;
  /** The tracker's last list of the layer's holders, and when it came. */
  list: { at: number; holders: Holder[]; refreshing: boolean };
  /** When a background run may go on beside reads again. */
  trickleAt: number;
  /** Streams it serves to peers now. */
  uploads: number;
  /** The fetcher's average latency of one chunk from a peer (for its hedge delay). */
  peerLatencyMs: number | undefined;
  /** Its last announce: when, how many chunks it held, and the pace the tracker asked in answer. */
  announced: { at: number; count: number; paceMs: number };
}

interface Supernode {
  url: string;
  up: Link;
  down: Link;
  cpu: Link;
  /** Its API threads' cores, when it has threads. */
  threads: Link | undefined;
  held: boolean[];
  /** Chunks on their way from the origin, with who waits for each. */
  waiting: Map<number, Array<() => void>>;
  /** Streams in flight from it, each with what to do when it dies. */
  streams: Map<number, () => void>;
  served: number;
  seeded: number;
  /** Streams it serves as a peer now. */
  uploads: number;
  /** What it lists itself as holding when it answers as the tracker (its seed's bitmap, `SEED_HOLDING_TTL_MS` old at most). */
  holding: { at: number; bits: Uint8Array | undefined };
  lost: boolean;
  /** Where its HTTP answers take their turns. */
  gate: AnswerGate;
}


const LAYER = `sha256:${"1".repeat(64)}`;
/** How often a yielding worker looks again whether reads have gone quiet, ms (the prefetcher polls every 20 ms; coarser here). */
const POLL_MS = 100;
/**
 * Turns of a loaded supernode's event loop a peers question waits through
 * (`loopRoundMs` each): reading it, answering it, and the asking agent's
 * own loop reading the answer, on a machine as loaded. Fitted to the
 * number of questions real cold 16-host swarms asked (342, 400, 388 real;
 * 435, 411, 385 simulated; 1 turn: about 510), an observable apart from
 * the byte split it then predicts (bench/RESULTS.md).
 */
export const QUESTION_LOOP_TURNS = 3;

/** How long the supernode's seed reuses a layer's bitmap of cached chunks, ms (supernode/src/swarm-seed.ts HOLDING_TTL_MS). */
const SEED_HOLDING_TTL_MS = 1_000;
/** Requests a supernode's seed serves at once before it answers "busy" (`shoal supernode --max-uploads`' default; an agent's is p2p's DEFAULT_MAX_UPLOADS). */
const SEED_MAX_UPLOADS = 32;
/** How long a host waits before asking again after a stream from a dead supernode failed, ms. */
const RETRY_MS = 50;

/** Run `s` with `policies` (shoal's own by default). */
export function simulateFleet(s: FleetScenario, policies: FleetPolicies = SHOAL_POLICIES): FleetOutcome {
  const events = new EventQueue();
  const net = new Network(events, s.stepMs);
  let seed = s.seed >>> 0 || 1;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const digests = Array.from({ length: s.chunks }, (_, c) => `sha256:${createHash("sha256").update(`chunk ${c}`).digest("hex")}`);
  const lengthOf = () => s.chunkBytes;
  const origin = net.link("origin", s.originEgress);
  const shared = s.sharedCores !== undefined ? net.link("machine-cpu", s.sharedCores, 1, { perProcess: true }) : undefined;
  /** A process's CPU: `processCores` of its own, on the machine's shared cores when there are. */
  const cpu = (name: string, cores = s.processCores ?? 1) => net.link(name, cores, 1);
  /** `ms` of CPU of process `on` (one core at most), then `then`. */
  const work = (on: Link, ms: number, then: () => void) => (ms > 0 ? net.send(shared ? [[on, ms / 1000], [shared, ms / 1000]] : [[on, ms / 1000]], 1, 0, then) : then());
  /** The legs of `on`'s CPU for a stream of chunks costing `ms` each. */
  const cpuLegs = (on: Link, ms: number): Leg[] => (shared ? [[on, ms / 1000 / s.chunkBytes], [shared, ms / 1000 / s.chunkBytes]] : [[on, ms / 1000 / s.chunkBytes]]);
  const urls = Array.from({ length: s.supernodes }, (_, k) => `http://supernode-${k}:7070`);
  // a preheat fills each supernode with the chunks it owns (the preheat split ranks as the fetchers do)
  const owners = digests.map((d) => policies.rankSupernodes(d, urls)[0]);
  /** `fn` in `ms` on the simulated clock; returns what cancels it. */
  const timer: After = (ms, fn) => {
    let live = true;
    events.after(ms, () => live && fn());
    return () => (live = false);
  };
  /** A supernode's answer gate, on the simulated clock. */
  const gateOf = () => new AnswerGate({ now: () => events.now, after: timer, rule: policies.backgroundMayStart });
  const supernodes: Supernode[] = urls.map((url, k) => ({
    url, up: net.link(`sn${k}-up`, s.supernodeNic), down: net.link(`sn${k}-down`, s.supernodeNic), cpu: cpu(`sn${k}-cpu`, s.supernodeCores),
    threads: (s.supernodeApiThreads ?? 0) > 0 ? net.link(`sn${k}-threads`, s.supernodeApiThreads!, 1) : undefined,
    held: Array.from({ length: s.chunks }, (_, c) => s.preheated && owners[c] === url), waiting: new Map(), streams: new Map(), served: 0, seeded: 0, uploads: 0, holding: { at: Number.NEGATIVE_INFINITY, bits: undefined }, lost: false,
    gate: gateOf(),
  }));
  const byUrl = new Map(supernodes.map((n) => [n.url, n]));
  const tracker = new PeerTable({ now: () => events.now }, { ttlMs: DEFAULT_TRACKER_TTL_MS });
  const layers = s.layerChunks ?? [s.chunks];
  if (layers.reduce((a, b) => a + b, 0) !== s.chunks) throw new Error(`the layers' chunks (${layers.join(" + ")}) are not the image's ${s.chunks}`);
  const firstOf = layers.map((_, li) => layers.slice(0, li).reduce((a, b) => a + b, 0));
  const layerOf = (c: number): ChunkPos => {
    const li = firstOf.findLastIndex((f) => f <= c);
    return [li, c - firstOf[li]!];
  };
  /** A host's prefetch order as `prefetchOrder` gives it, in the image's chunk numbers (layer 0); from `from` (each layer's first chunk) when given. */
  const prefetchOf = (from: readonly number[] | undefined) => {
    const draws = from && layers.flatMap((n, li) => (n > 0 ? [(from[li]! + 0.5) / n] : []));
    const planned = policies.prefetchOrder(layers, Array.from({ length: s.startupChunks }, (_, c) => layerOf(c)), { random: draws ? () => draws.shift()! : rand });
    return { order: planned.order.map(([li, c]): ChunkPos => [0, firstOf[li]! + c]), startup: planned.startup };
  };
  const hosts: Host[] = Array.from({ length: s.hosts }, (_, i) => {
    const { order, startup } = prefetchOf(s.prefetchFrom?.[i]);
    return {
      id: `host-${i}`, up: net.link(`h${i}-up`, s.hostNic), down: net.link(`h${i}-down`, s.hostNic), cpu: cpu(`h${i}-cpu`),
      held: Array<boolean>(s.chunks).fill(false), asked: Array<boolean>(s.chunks).fill(false), count: 0, startupHeld: 0,
      startedAt: 0, firstWorkAt: undefined, allLocalAt: undefined,
      startup: startupRuns(order.slice(0, startup), lengthOf, MAX_RUN_BYTES), queue: order.slice(startup),
      demand: new DemandActivity({ now: () => events.now }), list: { at: Number.NEGATIVE_INFINITY, holders: [], refreshing: false }, trickleAt: 0, uploads: 0,
      announced: { at: Number.NEGATIVE_INFINITY, count: 0, paceMs: 0 }, peerLatencyMs: undefined,
    };
  });
  const byId = new Map(hosts.map((h) => [h.id, h]));
  let peerBytes = 0;
  const timeline: Array<{ supernode: number; peer: number }> = [];
  /** `bytes` from `from` counted in the timeline's bucket of now. */
  const chart = (from: "supernode" | "peer", bytes: number) => {
    const b = Math.floor(events.now / TIMELINE_BUCKET_MS);
    while (timeline.length <= b) timeline.push({ supernode: 0, peer: 0 });
    timeline[b]![from] += bytes;
  };
  let running = 0;
  let trackerCpuMs = 0;
  let questions = 0;
  let streamIds = 0;
  let hedges = 0;

  /** Fetch chunks `ids` (none held or on their way) from the origin into supernode `n`, in one stream. */
  const fromOrigin = (n: Supernode, ids: readonly number[]) => {
    for (const k of ids) n.waiting.set(k, []);
    const id = streamIds++;
    let got = 0;
    const cut = net.send([origin, n.down, ...cpuLegs(n.cpu, s.supernodeCpuPerOriginChunkMs ?? 0)], ids.length * s.chunkBytes, s.originLatencyMs, () => n.streams.delete(id), {
      marks: ids.map((_, j) => (j + 1) * s.chunkBytes),
      onMark: (j) => {
        got = j + 1;
        landedAt(n, ids[j]!);
      },
    });
    // lost with the supernode: whoever waits for them there finds it dead and asks again
    n.streams.set(id, () => {
      cut();
      for (const c of ids.slice(got)) landedAt(n, c);
    });
  };

  const landedAt = (n: Supernode, c: number) => {
    n.held[c] = true;
    const w = n.waiting.get(c) ?? [];
    n.waiting.delete(c);
    for (const f of w) f();
  };

  /** `then` once supernode `n` holds all of `ids` (fetching from the origin, in one stream, those nobody asked for yet). */
  const allAt = (n: Supernode, ids: readonly number[], then: () => void) => {
    const fresh = ids.filter((c) => !n.held[c] && !n.waiting.has(c));
    if (fresh.length > 0) fromOrigin(n, fresh);
    let missing = ids.filter((c) => !n.held[c]).length;
    if (missing === 0) return then();
    for (const c of ids) if (!n.held[c]) n.waiting.get(c)!.push(() => void (--missing === 0 && then()));
  };

  const arrived = (h: Host, c: number) => {
    // (a hedged chunk may come twice: the first counts)
    if (h.held[c]) return;
    h.held[c] = true;
    h.count++;
    if (c < s.startupChunks) h.startupHeld++;
    if (h.firstWorkAt === undefined && h.startupHeld === s.startupChunks) h.firstWorkAt = events.now;
    if (h.count === s.chunks) {
      h.allLocalAt = events.now;
      running--;
    }
  };

  /**
   * How long one turn of supernode `n`'s event loop takes, ms: one round
   * of the answers it is sending, each a chunk's work on its turn (an
   * answer writes a chunk and waits for the socket to take it). The HTTP
   * answers are on its API threads when it has them; the seed's uploads
   * never are.
   */
  const loopRoundMs = (n: Supernode) => ((n.threads ? n.uploads : n.streams.size) * (s.supernodeCpuPerChunkMs ?? 0)) / net.coresOf(n.cpu);

  /**
   * The host's list of the layer's holders: the one it has, asking the
   * tracker anew when it is older than `PEER_LIST_TTL_MS`, as
   * `TrackerClient.peers` does: the supernodes in their ranking for the
   * layer, each given `PEERS_TIMEOUT_MS`; none answering in time leaves an
   * empty list. A question waits `QUESTION_LOOP_TURNS` turns of its
   * supernode's event loop (`loopRoundMs`), then costs it the CPU the real PeerTable takes to
   * answer. The answer lists the hosts that announced, and the supernode
   * itself, as the swarm's seed, holding what its cache holds.
   */
  const holdersFor = (h: Host): Holder[] => {
    if (events.now - h.list.at > PEER_LIST_TTL_MS && !h.list.refreshing) {
      h.list.refreshing = true;
      const ranked = policies.rankSupernodes(LAYER, urls).map((u) => byUrl.get(u)!);
      const ask = (from: number) => {
        const k = ranked.findIndex((n, j) => j >= from && !n.lost);
        if (k < 0) return void (h.list = { at: events.now, refreshing: false, holders: [] });
        const seed = ranked[k]!;
        let answered = false;
        const timeout = timer(PEERS_TIMEOUT_MS, () => {
          answered = true;
          ask(k + 1);
        });
        events.after(s.dcLatencyMs + QUESTION_LOOP_TURNS * loopRoundMs(seed), () => {
          // the question costs the tracker's supernode the CPU the real PeerTable takes to answer it, on this machine
          const t0 = performance.now();
          const answer = tracker.peers(LAYER);
          const askedMs = performance.now() - t0 + (s.questionRequestMs ?? QUESTION_REQUEST_MS);
          trackerCpuMs += askedMs;
          questions++;
          work(seed.cpu, askedMs, () => events.after(s.dcLatencyMs, () => {
            if (answered) return;
            answered = true;
            timeout();
            const peers: Holder[] = answer.filter((p) => p.peerId !== h.id).map((p) => ({ ...p, ...(p.chunks ? { bits: decodeChunkBitmap(p.chunks) } : {}) }));
            if (events.now - seed.holding.at > SEED_HOLDING_TTL_MS) seed.holding = { at: events.now, bits: seed.held.some(Boolean) ? decodeChunkBitmap(encodeChunkBitmap(s.chunks, (c) => seed.held[c] === true)) : undefined };
            if (seed.holding.bits && s.seedListed !== false) peers.push({ peerId: seed.url, addrs: [seed.url], bits: seed.holding.bits });
            h.list = { at: events.now, refreshing: false, holders: peers };
          }));
        });
      };
      ask(0);
    }
    return h.list.holders;
  };

  /**
   * Stream chunks `ids` to `h` across `path` (the server's legs, then the
   * host's NIC): one transfer; the host verifies and stores each chunk on
   * its CPU as it comes (`receiveMs`), `passed` tells it passed. `sent` when
   * the server has sent the last byte; `done` when every chunk is stored,
   * with those that did not come because `server` died on the way.
   */
  const stream = (h: Host, ids: readonly number[], path: readonly Leg[], server: Supernode | undefined, done: (unsent: number[]) => void, opts: { passed?: (c: number) => void; receiveMs?: number; sent?: () => void } = {}) => {
    let got = 0;
    let stored = 0;
    let expected = ids.length;
    const id = streamIds++;
    const store = () => void (++stored === expected && done(ids.slice(expected)));
    const cut = net.send([...path, h.down], ids.length * s.chunkBytes, s.dcLatencyMs, () => {
      server?.streams.delete(id);
      opts.sent?.();
    }, {
      marks: ids.map((_, j) => (j + 1) * s.chunkBytes),
      onMark: (j) => {
        got = j + 1;
        const c = ids[j]!;
        opts.passed?.(c);
        work(h.cpu, opts.receiveMs ?? s.cpuPerChunkMs, () => {
          arrived(h, c);
          store();
        });
      },
    });
    server?.streams.set(id, () => {
      cut();
      opts.sent?.();
      expected = got;
      if (stored === expected) done(ids.slice(expected));
    });
  };

  const overPeers = s.cpuPerChunkMs + (s.peerReceiveCpuPerChunkMs ?? 0);
  /** Each chunk's owner: the first up in its ranking (remembered until a supernode is lost). */
  let owned: Array<Supernode | undefined> = [];
  const ownerOf = (c: number) => (owned[c] ??= byUrl.get(policies.rankSupernodes(digests[c]!, urls).find((u) => !byUrl.get(u)!.lost)!)!);

  /** The legs of a supernode's API thread for an HTTP stream, when it has threads. */
  const threadLegs = (n: Supernode): Leg[] => (n.threads ? cpuLegs(n.threads, s.supernodeThreadCpuPerChunkMs ?? 0) : []);

  /** Chunks `ids` of `owner` to `h` over HTTP (a background answer in its turn at the supernode's gate), the origin's first when the supernode lacks them. */
  const fromSupernode = (h: Host, owner: Supernode, ids: readonly number[], background: boolean, done: (unsent: number[]) => void) => {
    const answer = (end: () => void) => {
      if (!owner.lost) return answerFrom(h, owner, ids, end, done);
      end();
      done([...ids]);
    };
    if (background) owner.gate.takeTurn(answer);
    else answer(owner.gate.onDemand());
  };

  const answerFrom = (h: Host, owner: Supernode, ids: readonly number[], end: () => void, done: (unsent: number[]) => void) => {
    owner.served += ids.length * s.chunkBytes;
    chart("supernode", ids.length * s.chunkBytes);
    if (ids.every((c) => !owner.held[c] && !owner.waiting.has(c))) {
      // nobody asked for these yet: one stream from the origin through the supernode to the host
      for (const c of ids) owner.waiting.set(c, []);
      const both = [...cpuLegs(owner.cpu, (s.supernodeCpuPerOriginChunkMs ?? 0) + (s.supernodeCpuPerChunkMs ?? 0)), ...threadLegs(owner)];
      stream(h, ids, [origin, owner.down, ...both, owner.up], owner, (unsent) => {
        // lost with the supernode: whoever waits for them there finds it dead and asks again
        for (const c of unsent) landedAt(owner, c);
        done(unsent);
      }, { passed: (c) => landedAt(owner, c), sent: end });
    } else {
      allAt(owner, ids, () => {
        if (!owner.lost) return stream(h, ids, [...cpuLegs(owner.cpu, s.supernodeCpuPerChunkMs ?? 0), ...threadLegs(owner), owner.up], owner, done, { sent: end });
        end();
        done([...ids]);
      });
    }
  };

  /** True when peer `id` (a host, or a supernode as the seed) would answer "busy": all its upload slots taken, or it is gone. */
  const busy = (id: string): boolean => {
    const seed = byUrl.get(id);
    return seed ? seed.lost || seed.uploads >= SEED_MAX_UPLOADS : byId.get(id)!.uploads >= DEFAULT_MAX_UPLOADS;
  };

  /**
   * Chunks `ids` to `h` from the peer `holder` (a host, or a supernode as
   * the seed). One already running its most uploads (`DEFAULT_MAX_UPLOADS`,
   * `SEED_MAX_UPLOADS`) answers "busy"; the fetcher then asks for each
   * chunk alone (`alone`).
   */
  const fromPeer = (h: Host, holder: string, ids: readonly number[], background: boolean, done: (unsent: number[]) => void) => {
    const peer = byId.get(holder);
    const seed = byUrl.get(holder);
    const server = (peer ?? seed)!;
    if (busy(holder)) return alone(h, ids, background, done);
    server.uploads++;
    peerBytes += ids.length * s.chunkBytes;
    chart("peer", ids.length * s.chunkBytes);
    if (seed) seed.seeded += ids.length * s.chunkBytes;
    const cost = peer ? s.cpuPerServedChunkMs ?? 0 : s.supernodeSeedCpuPerChunkMs ?? 0;
    stream(h, ids, [...cpuLegs(server.cpu, cost), server.up], seed, done, { receiveMs: overPeers, sent: () => server.uploads-- });
  };

  /**
   * Each of `ids` on its own, as the fetcher does after a failed run: in
   * the fetcher's own hedged race (`runHedgedRace`), the peers first (one of
   * two random holders not busy, as `PeerSource` tries two in turn), the
   * owning supernode over HTTP beside them once they are slower than
   * `hedgeDelayMs` of the host's average peer latency, or at once when they
   * fail. A stream that lost is not cut (the simulator's streams run to
   * their end; the fetcher's loser stops soon after).
   */
  const alone = (h: Host, ids: readonly number[], background: boolean, done: (unsent: number[]) => void) => {
    let pending = ids.length;
    const one = () => void (--pending === 0 && done([]));
    for (const c of ids) {
      const holders = h.list.holders.filter((p) => !p.bits || bitmapHas(p.bits, c));
      const free = Array.from({ length: Math.min(2, holders.length) }, () => holders[Math.floor(rand() * holders.length)]!.peerId).find((id) => !busy(id));
      const asked = events.now;
      runHedgedRace<string | undefined, true>({
        entrants: [...(free !== undefined ? [free] : []), undefined], // undefined: the supernode
        hedgeAfterMs: (e) => policies.hedgeDelayMs(DEFAULT_HEDGE_MS, e === undefined ? undefined : h.peerLatencyMs),
        isLastResort: () => false,
        onHedge: () => void hedges++,
        after: timer,
        attempt: (e, settle) => {
          const got = (unsent: number[]) => settle(unsent.length === 0 ? true : undefined);
          if (e === undefined) fromSupernode(h, ownerOf(c), [c], background, got);
          else if (busy(e)) settle(undefined);
          else {
            fromPeer(h, e, [c], background, (unsent) => {
              if (unsent.length === 0) h.peerLatencyMs = latencyAverage(h.peerLatencyMs, events.now - asked);
              got(unsent);
            });
          }
          return () => undefined;
        },
      }, (won) => (won ? one() : events.after(RETRY_MS, () => fetchRun(h, [c], background, one))));
    }
  };

  /** Fetch chunks `ids` (adjacent, missing) to `h`: from peers when every one has a holder, else from their owning supernodes; `done` when all are here. */
  const fetchRun = (h: Host, ids: readonly number[], background: boolean, done: () => void) => {
    if (ids.length === 0) return done();
    for (const c of ids) h.asked[c] = true;
    const plan = policies.planPeerRun(holdersFor(h), ids, rand);
    const parts: Array<() => void> = [];
    let pending = 0;
    const partDone = (unsent: number[]) => {
      if (unsent.length > 0) {
        pending++;
        events.after(RETRY_MS, () => fetchRun(h, unsent, background, () => partDone([])));
      }
      if (--pending === 0) done();
    };
    let deferred = 0;
    if (typeof plan !== "number") {
      // a busy holder fails the peer source's run once the others have sent theirs (kept): its chunks are then fetched alone
      const free = [...plan].filter(([holder]) => !busy(holder.peerId));
      const refused = [...plan].filter(([holder]) => busy(holder.peerId)).flatMap(([, chunks]) => chunks);
      if (free.length === 0) parts.push(() => alone(h, refused, background, partDone));
      else {
        let left = free.length;
        if (refused.length > 0) deferred = 1;
        const freeDone = (unsent: number[]) => {
          partDone(unsent);
          if (--left === 0 && refused.length > 0) alone(h, refused, background, partDone);
        };
        for (const [holder, chunks] of free) parts.push(() => fromPeer(h, holder.peerId, chunks, background, freeDone));
      }
    } else {
      let k = 0;
      while (k < ids.length) {
        const owner = ownerOf(ids[k]!);
        const chunks = [ids[k]!];
        while (++k < ids.length && ownerOf(ids[k]!) === owner) chunks.push(ids[k]!);
        parts.push(() => fromSupernode(h, owner, chunks, background, partDone));
      }
    }
    pending = parts.length + deferred;
    for (const p of parts) p();
  };

  /** The chunks of `run` that `h` neither holds nor has asked for. */
  const missingOf = (h: Host, [, first, last]: Run): number[] => {
    const ids: number[] = [];
    for (let c = first; c <= last; c++) if (!h.held[c] && !h.asked[c]) ids.push(c);
    return ids;
  };

  /** The startup runs, `onDemandInFlight` at once, each counted as reads; then the background stream. */
  const startUp = (h: Host) => {
    let next = 0;
    let workers = Math.min(s.onDemandInFlight, h.startup.length);
    if (s.startupChunks === 0) h.firstWorkAt = events.now;
    if (workers === 0) return background(h);
    const worker = () => {
      const run = h.startup[next++];
      if (!run) {
        if (--workers === 0) background(h);
        return;
      }
      const ids = missingOf(h, run);
      if (ids.length === 0) return worker();
      const ended = h.demand.begin();
      fetchRun(h, ids, false, () => {
        ended();
        worker();
      });
    };
    for (let k = workers; k > 0; k--) worker();
  };

  /** `backgroundInFlight` workers taking runs as `takeRun` gives them, yielding to reads as the prefetcher does. */
  const background = (h: Host) => {
    const worker = () => {
      const run = takeRun(h.queue, (_, c) => h.held[c] === true || h.asked[c] === true, lengthOf);
      if (!run) return;
      const until = events.now + MAX_YIELD_MS;
      const go = () => {
        if (h.demand.busy(QUIET_MS) && events.now < Math.max(until, h.trickleAt)) return events.after(POLL_MS, go);
        const trickle = h.demand.busy(QUIET_MS);
        const ids = missingOf(h, run);
        fetchRun(h, ids, true, () => {
          if (trickle) h.trickleAt = events.now + MAX_YIELD_MS;
          worker();
        });
      };
      go();
    };
    for (let k = 0; k < s.backgroundInFlight; k++) worker();
  };

  const announce = () => {
    let roundMs = 0;
    for (const h of hosts) {
      if (h.count === 0 || h.startedAt > events.now) continue;
      // the announcer: new chunks at most once per the pace the tracker asked, a holding unchanged at least every ten seconds or pace
      const since = events.now - h.announced.at;
      if (!((h.count !== h.announced.count && since >= h.announced.paceMs) || since >= Math.max(ANNOUNCE_EVERY_MS, h.announced.paceMs))) continue;
      const chunks = { [LAYER]: encodeChunkBitmap(s.chunks, (c) => h.held[c] === true) };
      // every supernode takes every announce: each pays the CPU the real PeerTable took for it here
      const t0 = performance.now();
      const ttlMs = tracker.announce({ peerId: h.id, addrs: [h.id], layers: [LAYER], chunks });
      roundMs += performance.now() - t0 + (s.announceRequestMs ?? ANNOUNCE_REQUEST_MS);
      h.announced = { at: events.now, count: h.count, paceMs: policies.announcePaceMs(tracker.stats().peers, ttlMs) };
    }
    // a steady stream of requests: until the next round it takes its share of each supernode's core
    trackerCpuMs += roundMs * supernodes.length;
    for (const n of supernodes) n.cpu.taken = Math.min(0.95, roundMs / s.announceEveryMs);
    if (running > 0) events.after(s.announceEveryMs, announce);
  };

  running = hosts.length;
  for (const h of hosts) {
    h.startedAt = s.staggerMs > 0 ? Math.floor(rand() * s.staggerMs) : 0;
    events.after(h.startedAt, () => work(h.cpu, s.mountCpuMs ?? 0, () => startUp(h)));
  }
  if (s.supernodeLostAtMs !== undefined && supernodes.length > 1) {
    events.after(s.supernodeLostAtMs, () => {
      const n = supernodes[0]!;
      n.lost = true;
      owned = [];
      // its streams are cut off; chunks on their way from the origin are lost with it
      const cut = [...n.streams.values()];
      n.streams.clear();
      for (const c of cut) c();
    });
  }
  events.after(s.announceEveryMs, announce);
  events.run();
  const perHost = (at: (h: Host) => number | undefined) => hosts.map((h) => (at(h) ?? Number.NaN) - h.startedAt).sort((a, b) => a - b);
  return {
    firstWorkMs: perHost((h) => h.firstWorkAt),
    allLocalPerHostMs: perHost((h) => h.allLocalAt),
    allLocalMs: Math.max(...hosts.map((h) => h.allLocalAt ?? Number.NaN)),
    originBytes: origin.carried,
    supernodeBytes: supernodes.map((n) => n.served),
    seedBytes: supernodes.map((n) => n.seeded),
    peerBytes,
    trackerCpuMs,
    questions,
    hedges,
    timeline,
  };
}
