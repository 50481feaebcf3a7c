// Calibration of the fleet simulator against the real swarm bench (issue
// 29): the same scenario (the realistic image, one cold supernode, a
// 200 Mbit/s registry, 1 Gbit/s links, N agents streaming the whole image
// at once) run for real in network namespaces on this 2-core machine
// (bench/src/swarm), then simulated with every process on 2 shared cores.
// CPU costs per chunk are fitted on N = 1 (receiving; a supernode serving)
// and N = 4 (serving a peer); N = 8 and 16 are predictions. Prints real
// against simulated completion time, origin egress and supernode bytes,
// and the error of each.
//   node bench/src/sim/calibrate.ts [--hosts 1,4,8,16] [--real FILE] [--json]
// --real FILE: a saved `--json` result of this command or of bench/src/swarm (skips the real runs).
// Needs root and what bench/src/swarm needs, unless --real.
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { ANNOUNCE_CHANGED_MS } from "@shoal/swarm";
import { PREFETCH_CONCURRENCY } from "@shoal/fetch";
import { runSwarmBench, type ShoalPass, type SwarmBenchResult } from "../swarm/swarm-bench.ts";
import { simulateFleet, type FleetScenario } from "./fleet.ts";

const { values } = parseArgs({ options: { hosts: { type: "string", default: "1,4,8,16" }, real: { type: "string" }, json: { type: "boolean", default: false } } });
const hosts = values.hosts.split(",").map(Number);
if (!hosts.includes(1) || !hosts.includes(4)) throw new Error("--hosts must include 1 and 4 (the costs are fitted on them)");

const real: SwarmBenchResult = values.real
  ? (JSON.parse(await readFile(values.real, "utf8")) as SwarmBenchResult)
  : await runSwarmBench({ hosts, skipBaseline: true, log: (l) => console.error(l) });
const pass = (n: number): ShoalPass => {
  const p = real.rows.find((r) => r.n === n)?.shoal;
  if (!p || "failed" in p) throw new Error(`no real pass for N = ${n}`);
  return p;
};

/** The image as the simulator sees it: 256 KiB of tar per chunk, the lazy blob's bytes shared among them. */
const chunks = Math.round(real.image.uncompressedBytes / (256 * 1024));
const chunkBytes = real.image.lazyBytes / chunks;
const one = pass(1);
const four = pass(4);
const receiveMs = (one.cpuSec.agents * 1000) / chunks;
const supernodeMs = (one.cpuSec.supernode * 1000) / chunks;
const servedChunks4 = (four.sources.peer ?? 0) / chunkBytes;
const servedMs = servedChunks4 > 0 ? Math.max(0, (four.cpuSec.agents * 1000 - 4 * chunks * receiveMs) / servedChunks4) : 0;

const scenario = (n: number): FleetScenario => ({
  hosts: n, supernodes: 1, chunks, chunkBytes, startupChunks: 0,
  hostNic: (real.hostMbit * 1e6) / 8, supernodeNic: (real.hostMbit * 1e6) / 8, originEgress: (real.registryMbit * 1e6) / 8,
  dcLatencyMs: 0.2, originLatencyMs: 0.5, cpuPerChunkMs: receiveMs, cpuPerServedChunkMs: servedMs, supernodeCpuPerChunkMs: supernodeMs,
  sharedCores: 2, onDemandInFlight: 8, backgroundInFlight: PREFETCH_CONCURRENCY, announceEveryMs: ANNOUNCE_CHANGED_MS,
  preheated: false, staggerMs: 0, seed: 1,
});

const err = (sim: number, act: number) => (act === 0 ? (sim === 0 ? "0%" : "n/a") : `${(((sim - act) / act) * 100).toFixed(0)}%`);
const mib = (b: number) => `${(b / 1048576).toFixed(1)}`;
console.log(`image: ${chunks} chunks of ${(chunkBytes / 1024).toFixed(0)} KiB (lazy ${mib(real.image.lazyBytes)} MiB); fitted CPU per chunk: received ${receiveMs.toFixed(2)} ms, served to a peer ${servedMs.toFixed(2)} ms, served by the supernode ${supernodeMs.toFixed(2)} ms; 2 shared cores`);
console.log("N   time real / sim (err)         origin MiB real / sim (err)    supernode MiB real / sim (err)   peer MiB real / sim");
const rows = [];
for (const n of hosts) {
  const r = pass(n);
  const o = simulateFleet(scenario(n));
  const row = { n, real: { sec: r.sec, originBytes: r.registryBytes, supernodeBytes: r.sources.supernode ?? 0, peerBytes: r.sources.peer ?? 0 }, sim: { sec: o.allLocalMs / 1000, originBytes: o.originBytes, supernodeBytes: o.supernodeBytes[0]!, peerBytes: o.peerBytes } };
  rows.push(row);
  console.log([
    String(n).padEnd(3),
    `${row.real.sec.toFixed(2)} / ${row.sim.sec.toFixed(2)} s (${err(row.sim.sec, row.real.sec)})`.padEnd(30),
    `${mib(row.real.originBytes)} / ${mib(row.sim.originBytes)} (${err(row.sim.originBytes, row.real.originBytes)})`.padEnd(31),
    `${mib(row.real.supernodeBytes)} / ${mib(row.sim.supernodeBytes)} (${err(row.sim.supernodeBytes, row.real.supernodeBytes)})`.padEnd(33),
    `${mib(row.real.peerBytes)} / ${mib(row.sim.peerBytes)}`,
  ].join(" "));
}
if (values.json) console.log(JSON.stringify({ real, fitted: { chunks, chunkBytes, receiveMs, servedMs, supernodeMs }, rows }, null, 2));
