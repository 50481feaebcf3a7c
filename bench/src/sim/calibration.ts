/**
 * Calibration of the fleet simulator against the real swarm bench
 * (bench/src/swarm): the same scenario (the realistic image, one
 * supernode, cold and preheated, a 200 Mbit/s registry, 1 Gbit/s links, N
 * agents streaming the whole image at once), run for real in network
 * namespaces on this 2-core machine, then simulated with every process on
 * 2 shared cores.
 *
 * The CPU costs are measured in the real runs (each process's CPU seconds,
 * from /proc; the supernode's seed bytes from its metrics), not guessed:
 * - a mount: N = 1's mount time;
 * - per chunk a host receives: the cold N = 1 (every chunk over HTTP from
 *   the supernode); and more per chunk over the peer protocol: the
 *   preheated N = 1 (nearly every chunk from the supernode's seed);
 * - per chunk a host serves a peer: what the cold N = 4's agents spent
 *   beyond those;
 * - per chunk the supernode fetches from the origin, serves over HTTP and
 *   serves as the seed: the three equations of the supernode's CPU in the
 *   cold N = 1, the preheated N = 1 and the cold N = 4.
 * Past N = 4 the same work costs more CPU on this machine (up to 17
 * processes on 2 cores: switches, caches): each pass's inflation over
 * those costs is measured from its own CPU seconds and given to its
 * simulation, for the agents and the supernode apart. That inflation
 * belongs to the test machine, not to a fleet whose hosts have cores of
 * their own: the predictions use the uninflated costs. Each pass is
 * simulated on the cores the machine had during it (less what the
 * hypervisor stole) and with its agents' prefetch beginning each layer
 * where the real ones began (`prefetchLayers`): those few random draws
 * decide how much hosts can serve each other, and were most of a pass's
 * spread from run to run. Every other figure (times, bytes by source) is
 * the simulator's own, averaged over `SIM_RUNS` simulations.
 */
import { ANNOUNCE_CHANGED_MS } from "@shoal/swarm";
import { PREFETCH_CONCURRENCY, STARTUP_CONCURRENCY } from "@shoal/fetch";
import type { ShoalPass, SwarmBenchResult } from "../swarm/swarm-bench.ts";
import { simulateFleet } from "./fleet.ts";
import type { FleetScenario } from "./fleet-scenario.ts";

/** The image as the simulator sees it, and the CPU costs measured on the real runs, ms (see the module comment). */
export interface FittedCosts {
  chunks: number;
  chunkBytes: number;
  mountMs: number;
  receiveMs: number;
  peerReceiveMs: number;
  peerServeMs: number;
  supernodeMs: number;
  seedMs: number;
  supernodeOriginMs: number;
}

/** How much more CPU the same work took in the real pass of N than the costs say (1: none), for the agents and the supernode. */
export interface Inflation {
  agents: number;
  supernode: number;
}

/** One N, real against simulated. */
export interface CalibrationRow {
  n: number;
  preheated: boolean;
  inflation: Inflation;
  real: Figures;
  sim: Figures;
}

/** What is compared: seconds until every host, and the fastest, held the image; bytes by where they came from (the seed's are among the peers'). */
export interface Figures {
  sec: number;
  fastestSec: number;
  originBytes: number;
  supernodeBytes: number;
  peerBytes: number;
  seedBytes: number;
}

/** How far the simulator may miss a real figure (the issue's 20%). */
export const TOLERANCE = 0.2;

/** The real shoal pass for `n` hosts, cold or after a preheat; undefined when the bench has none. */
export function passOf(real: SwarmBenchResult, n: number, preheated = false): ShoalPass | undefined {
  const row = real.rows.find((r) => r.n === n);
  const p = preheated ? row?.preheated : row?.shoal;
  return p && !("failed" in p) ? p : undefined;
}

function mustPass(real: SwarmBenchResult, n: number): ShoalPass {
  const p = passOf(real, n);
  if (!p) throw new Error(`no real pass for N = ${n}`);
  return p;
}

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Chunks of a pass by where they came from. */
function chunksOf(p: ShoalPass, chunkBytes: number): { http: number; peer: number; seed: number } {
  const seed = Number.isFinite(p.seedBytes) ? p.seedBytes! : 0;
  return { http: (p.sources.supernode ?? 0) / chunkBytes, peer: (p.sources.peer ?? 0) / chunkBytes, seed: seed / chunkBytes };
}

/** See the module comment; needs the cold passes at N = 1 and 4, and the preheated N = 1 (without it, the seed costs as HTTP does). */
export function fitCosts(real: SwarmBenchResult): FittedCosts {
  // the layers' chunks as the agents counted them, else 256 KiB of tar per chunk; the lazy blob's bytes shared among them
  const counted = real.rows.flatMap((r) => [passOf(real, r.n), passOf(real, r.n, true)]).find((p) => p?.prefetchLayers)?.prefetchLayers;
  const chunks = counted ? sum(counted.chunks) : Math.round(real.image.uncompressedBytes / (256 * 1024));
  const chunkBytes = real.image.lazyBytes / chunks;
  const one = mustPass(real, 1);
  const four = mustPass(real, 4);
  const hot = passOf(real, 1, true);
  const ms = (sec: number) => sec * 1000;
  const mountMs = ms(one.mountSecMax);
  const receiveMs = (ms(one.cpuSec.agents) - mountMs) / chunks;
  const c1 = chunksOf(one, chunkBytes);
  const c4 = chunksOf(four, chunkBytes);
  const h1 = hot ? chunksOf(hot, chunkBytes) : undefined;
  const peerReceiveMs = hot && h1!.peer > 0 ? Math.max(0, (ms(hot.cpuSec.agents) - mountMs - chunks * receiveMs) / h1!.peer) : 0;
  const served4 = c4.peer - c4.seed;
  const peerServeMs = served4 > 0 ? Math.max(0, (ms(four.cpuSec.agents) - 4 * (mountMs + chunks * receiveMs) - c4.peer * peerReceiveMs) / served4) : 0;
  // the supernode's CPU = origin chunks · originMs + HTTP chunks · supernodeMs + seed chunks · seedMs
  let supernodeOriginMs = 0;
  let supernodeMs = ms(one.cpuSec.supernode) / chunks;
  let seedMs = supernodeMs;
  if (hot && h1!.seed > 0) {
    const solved = solve3([[chunks, c1.http, c1.seed], [0, h1!.http, h1!.seed], [chunks, c4.http, c4.seed]], [ms(one.cpuSec.supernode), ms(hot.cpuSec.supernode), ms(four.cpuSec.supernode)]);
    if (solved.every((x) => Number.isFinite(x) && x >= 0)) [supernodeOriginMs, supernodeMs, seedMs] = solved;
  }
  return { chunks, chunkBytes, mountMs, receiveMs, peerReceiveMs, peerServeMs, supernodeMs, seedMs, supernodeOriginMs };
}

/** The pass's CPU over what `fit`'s costs give for the work it did (its chunks by source), for the agents and the supernode. */
export function inflationOf(fit: FittedCosts, n: number, p: ShoalPass, preheated: boolean): Inflation {
  const c = chunksOf(p, fit.chunkBytes);
  const agents = n * (fit.mountMs + fit.chunks * fit.receiveMs) + c.peer * fit.peerReceiveMs + (c.peer - c.seed) * fit.peerServeMs;
  const supernode = (preheated ? 0 : fit.chunks * fit.supernodeOriginMs) + c.http * fit.supernodeMs + c.seed * fit.seedMs;
  return { agents: (p.cpuSec.agents * 1000) / agents, supernode: supernode > 0 ? (p.cpuSec.supernode * 1000) / supernode : 1 };
}

/** x with A·x = b, for 3×3 A (Cramer's rule). */
function solve3(a: number[][], b: number[]): [number, number, number] {
  const det = (m: number[][]) =>
    m[0]![0]! * (m[1]![1]! * m[2]![2]! - m[1]![2]! * m[2]![1]!) - m[0]![1]! * (m[1]![0]! * m[2]![2]! - m[1]![2]! * m[2]![0]!) + m[0]![2]! * (m[1]![0]! * m[2]![1]! - m[1]![1]! * m[2]![0]!);
  const d = det(a);
  const col = (k: number) => det(a.map((row, i) => row.map((v, j) => (j === k ? b[i]! : v))));
  return [col(0) / d, col(1) / d, col(2) / d];
}

/** The cores of the machine the real bench runs on. */
const BENCH_CORES = 2;

/** Simulations of each real pass, their figures averaged: the model's expectation, not one draw of its peer picks. */
export const SIM_RUNS = 4;

/** The cores `pass` had: the machine's, less what the hypervisor stole during it (when it was measured). */
export function coresOf(pass: ShoalPass | undefined): number {
  const steal = pass?.machineSec?.steal ?? 0;
  return pass && pass.sec > 0 ? Math.max(1, BENCH_CORES - steal / pass.sec) : BENCH_CORES;
}

/**
 * The real bench's scenario for `n` hosts, as the simulator takes it; with
 * `pass`, its cores (`coresOf`) and where its agents' prefetch began each
 * layer, replayed (when it recorded that).
 */
export function calibrationScenario(real: SwarmBenchResult, fit: FittedCosts, n: number, preheated: boolean, inflation: Inflation = { agents: 1, supernode: 1 }, pass?: ShoalPass): FleetScenario {
  const a = inflation.agents;
  const layers = pass?.prefetchLayers;
  const replay = layers && layers.from.length === n && sum(layers.chunks) === fit.chunks ? { layerChunks: layers.chunks, prefetchFrom: layers.from } : {};
  return {
    ...replay,
    hosts: n, supernodes: 1, chunks: fit.chunks, chunkBytes: fit.chunkBytes, startupChunks: 0,
    hostNic: (real.hostMbit * 1e6) / 8, supernodeNic: (real.hostMbit * 1e6) / 8, originEgress: (real.registryMbit * 1e6) / 8,
    dcLatencyMs: 0.2, originLatencyMs: 0.5, cpuPerChunkMs: a * fit.receiveMs, peerReceiveCpuPerChunkMs: a * fit.peerReceiveMs, cpuPerServedChunkMs: a * fit.peerServeMs,
    supernodeCpuPerChunkMs: inflation.supernode * fit.supernodeMs, supernodeSeedCpuPerChunkMs: inflation.supernode * fit.seedMs,
    supernodeCpuPerOriginChunkMs: inflation.supernode * fit.supernodeOriginMs, mountCpuMs: a * fit.mountMs, sharedCores: coresOf(pass),
    onDemandInFlight: STARTUP_CONCURRENCY, backgroundInFlight: PREFETCH_CONCURRENCY, announceEveryMs: ANNOUNCE_CHANGED_MS,
    preheated, staggerMs: 0, seed: 1,
  };
}

/** Each real pass of `hosts`, cold and preheated where the bench ran it, against its simulation. */
export function calibrate(real: SwarmBenchResult, fit: FittedCosts, hosts: readonly number[]): CalibrationRow[] {
  return hosts.flatMap((n) => [false, true].flatMap((preheated) => {
    const p = passOf(real, n, preheated);
    if (!p) return [];
    const inflation = inflationOf(fit, n, p, preheated);
    const scenario = calibrationScenario(real, fit, n, preheated, inflation, p);
    const runs = Array.from({ length: SIM_RUNS }, (_, k): Figures => {
      const o = simulateFleet({ ...scenario, seed: k + 1 });
      return { sec: o.allLocalMs / 1000, fastestSec: o.allLocalPerHostMs[0]! / 1000, originBytes: o.originBytes, supernodeBytes: o.supernodeBytes[0]!, peerBytes: o.peerBytes, seedBytes: o.seedBytes[0]! };
    });
    const mean = (k: keyof Figures) => sum(runs.map((f) => f[k])) / runs.length;
    return [{
      n, preheated, inflation,
      real: { sec: p.sec, fastestSec: p.perHostSec.min, originBytes: p.registryBytes, supernodeBytes: p.sources.supernode ?? 0, peerBytes: p.sources.peer ?? 0, seedBytes: p.seedBytes ?? Number.NaN },
      sim: { sec: mean("sec"), fastestSec: mean("fastestSec"), originBytes: mean("originBytes"), supernodeBytes: mean("supernodeBytes"), peerBytes: mean("peerBytes"), seedBytes: mean("seedBytes") },
    }];
  }));
}

/** The simulated figure's error against the real one, as a fraction (0 when both are 0). */
export function errorOf(sim: number, real: number): number {
  if (real === 0) return sim === 0 ? 0 : Number.POSITIVE_INFINITY;
  return (sim - real) / real;
}

/** The table of `rows`: real / simulated (error), a line per N, and whether each figure is within `TOLERANCE`. */
export function formatCalibration(fit: FittedCosts, rows: readonly CalibrationRow[]): string {
  const mib = (b: number) => (b / 1048576).toFixed(1);
  const cell = (r: number, s: number, f: (x: number) => string) => {
    const e = errorOf(s, r);
    return `${f(r)} / ${f(s)} (${Number.isFinite(e) ? `${e >= 0 ? "+" : ""}${(e * 100).toFixed(0)}%` : "n/a"}${Math.abs(e) <= TOLERANCE ? "" : "!"})`;
  };
  const sec = (x: number) => x.toFixed(2);
  const lines = [
    `image: ${fit.chunks} chunks of ${(fit.chunkBytes / 1024).toFixed(0)} KiB. CPU measured: mount ${fit.mountMs.toFixed(0)} ms; per chunk a host receives ${fit.receiveMs.toFixed(2)} ms (+${fit.peerReceiveMs.toFixed(2)} ms over the peer protocol), serves a peer ${fit.peerServeMs.toFixed(2)} ms; the supernode serves over HTTP ${fit.supernodeMs.toFixed(2)} ms, as the seed ${fit.seedMs.toFixed(2)} ms, fetches from the origin ${fit.supernodeOriginMs.toFixed(2)} ms; 2 shared cores`,
    `real / simulated (error; ! past ${TOLERANCE * 100}%)`,
    `${"N".padEnd(3)} ${"preheated".padEnd(9)} ${"CPU x".padEnd(10)} ${"all hosts, s".padEnd(22)} ${"fastest host, s".padEnd(22)} ${"origin, MiB".padEnd(24)} ${"supernode HTTP, MiB".padEnd(26)} ${"peers, MiB".padEnd(26)} of which the seed`,
  ];
  for (const { n, preheated, inflation, real: r, sim: s } of rows) {
    lines.push([
      String(n).padEnd(3), (preheated ? "yes" : "no").padEnd(9), `${inflation.agents.toFixed(2)}/${inflation.supernode.toFixed(2)}`.padEnd(10), cell(r.sec, s.sec, sec).padEnd(22), cell(r.fastestSec, s.fastestSec, sec).padEnd(22), cell(r.originBytes, s.originBytes, mib).padEnd(24),
      cell(r.supernodeBytes, s.supernodeBytes, mib).padEnd(26), cell(r.peerBytes, s.peerBytes, mib).padEnd(26), Number.isFinite(r.seedBytes) ? cell(r.seedBytes, s.seedBytes, mib) : `? / ${mib(s.seedBytes)}`,
    ].join(" "));
  }
  return lines.join("\n");
}
