/**
 * The fleet simulator's predictions (issue 29): scenarios on a datacenter's
 * network with the CPU costs measured on the real runs (`calibration.ts`),
 * and the table they give.
 */
import { ANNOUNCE_CHANGED_MS } from "@shoal/swarm";
import { PREFETCH_CONCURRENCY, STARTUP_CONCURRENCY } from "@shoal/fetch";
import type { FittedCosts } from "./calibration.ts";
import { simulateFleet } from "./fleet.ts";
import type { FleetScenario } from "./fleet-scenario.ts";

/** Chunks the realistic image's startup trace reads before first work (bench/RESULTS.md, the lazy bench). */
export const STARTUP_CHUNKS = 131;

/**
 * What the supernode's hot chunks and API threads do to a chunk served over
 * HTTP, measured on a real supernode (`node bench/src/supernode-serve.ts`,
 * 16 clients, runs of 10 chunks): from its store 422 µs of CPU, from its
 * hot chunks 107 µs; with two API threads, 35 µs of the main thread and
 * 119 µs of the threads where one thread spent 106. The real swarm runs
 * the costs are fitted on read every chunk from the store: the predictions
 * scale that HTTP cost by these.
 */
export const HOT_CHUNK_SCALE = 107 / 422;
export const API_THREAD_SPLIT = { main: 35 / 106, thread: 119 / 106 };
/** The API threads of the predictions' scenario with threads (`--api-threads`). */
export const PREDICTED_API_THREADS = 4;

/** A named scenario. */
export interface NamedScenario {
  name: string;
  scenario: FleetScenario;
}

/** What one scenario gave. */
export interface Prediction {
  name: string;
  hosts: number;
  supernodes: number;
  firstWorkSec: { p50: number; p99: number; max: number };
  allLocalSec: number;
  originImages: number;
  /** The busiest supernode's bytes over the mean. */
  busiestSupernode: number;
  peerImages: number;
  /** CPU the trackers spent (the real PeerTable, timed here), seconds. */
  trackerCpuSec: number;
  wallSec: number;
}

/**
 * The scenarios for `hosts` and `supernodes`: everyone at once, cold and
 * preheated; preheated and staggered over 10 s; preheated with the
 * supernodes' API threads; preheated with supernode 0 lost 0.5 s in. Each
 * host and supernode is one Node process, its work on one core (and its
 * API threads' on cores of their own).
 */
export function predictionScenarios(fit: FittedCosts, hosts: number, supernodes: number): NamedScenario[] {
  const base: FleetScenario = {
    hosts, supernodes, chunks: fit.chunks, chunkBytes: fit.chunkBytes, startupChunks: STARTUP_CHUNKS,
    hostNic: 125e6, supernodeNic: 1250e6, originEgress: 25e6, dcLatencyMs: 0.2, originLatencyMs: 20,
    cpuPerChunkMs: fit.receiveMs, peerReceiveCpuPerChunkMs: fit.peerReceiveMs, cpuPerServedChunkMs: fit.peerServeMs,
    supernodeCpuPerChunkMs: fit.supernodeMs * HOT_CHUNK_SCALE, supernodeSeedCpuPerChunkMs: fit.seedMs, supernodeCpuPerOriginChunkMs: fit.supernodeOriginMs, mountCpuMs: fit.mountMs,
    onDemandInFlight: STARTUP_CONCURRENCY, backgroundInFlight: PREFETCH_CONCURRENCY, announceEveryMs: ANNOUNCE_CHANGED_MS,
    preheated: false, staggerMs: 0, seed: 1,
    // 10 ms steps past 100 hosts: at 100 hosts they move first work and the rest by 3% at most against 1 ms, at a fraction of the cost
    stepMs: hosts > 100 ? 10 : 1,
  };
  return [
    { name: "peak, cold", scenario: base },
    { name: "peak, preheated", scenario: { ...base, preheated: true } },
    { name: "staggered, preheated", scenario: { ...base, preheated: true, staggerMs: 10_000 } },
    {
      name: `peak, preheated, ${PREDICTED_API_THREADS} API threads`,
      scenario: {
        ...base, preheated: true, supernodeApiThreads: PREDICTED_API_THREADS,
        supernodeCpuPerChunkMs: fit.supernodeMs * HOT_CHUNK_SCALE * API_THREAD_SPLIT.main, supernodeThreadCpuPerChunkMs: fit.supernodeMs * HOT_CHUNK_SCALE * API_THREAD_SPLIT.thread,
      },
    },
    ...(supernodes > 1 ? [{ name: "supernode lost", scenario: { ...base, preheated: true, supernodeLostAtMs: 500 } }] : []),
  ];
}

/** Simulate `s`. */
export function predict({ name, scenario }: NamedScenario): Prediction {
  const t0 = performance.now();
  const o = simulateFleet(scenario);
  const image = scenario.chunks * scenario.chunkBytes;
  const at = (q: number) => o.firstWorkMs[Math.min(o.firstWorkMs.length - 1, Math.floor(q * o.firstWorkMs.length))]! / 1000;
  // a supernode's load: what it served over HTTP and as the seed
  const load = o.supernodeBytes.map((b, k) => b + o.seedBytes[k]!);
  const mean = load.reduce((a, b) => a + b, 0) / load.length;
  return {
    name, hosts: scenario.hosts, supernodes: scenario.supernodes,
    firstWorkSec: { p50: at(0.5), p99: at(0.99), max: o.firstWorkMs.at(-1)! / 1000 },
    allLocalSec: o.allLocalMs / 1000, originImages: o.originBytes / image, busiestSupernode: mean > 0 ? Math.max(...load) / mean : 1,
    peerImages: o.peerBytes / image, trackerCpuSec: o.trackerCpuMs / 1000, wallSec: (performance.now() - t0) / 1000,
  };
}

/** A markdown table of `ps`, first work also against one host alone in the same scenario when the table has it. */
export function formatPredictions(ps: readonly Prediction[]): string {
  const alone = (p: Prediction) => ps.find((q) => q.hosts === 1 && q.name === p.name && q.supernodes === p.supernodes);
  const rows = ps.map((p) => {
    const one = alone(p);
    return `| ${p.name} | ${p.hosts.toLocaleString("en")} | ${p.supernodes} | ${p.firstWorkSec.p50.toFixed(2)} / ${p.firstWorkSec.p99.toFixed(2)} s | ${one ? `${(p.firstWorkSec.p99 / one.firstWorkSec.p99).toFixed(1)}x` : ""} | ${p.allLocalSec.toFixed(1)} s | ${p.originImages.toFixed(2)}x | ${p.busiestSupernode.toFixed(2)}x | ${p.peerImages.toFixed(0)} | ${p.trackerCpuSec.toFixed(2)} s | ${p.wallSec.toFixed(1)} s |`;
  });
  return [
    "| scenario | hosts | supernodes | first work p50 / p99 | p99 / one host | all local | origin / image | busiest supernode / mean | peer bytes / image | tracker CPU | wall |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
  ].join("\n");
}
