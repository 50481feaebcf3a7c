// The fleet simulator: its outcome follows shoal's own policies (swap one
// and the outcome moves), and it keeps what the model promises.
import { readFileSync } from "node:fs";
import { prefetchOrder } from "@shoal/fetch";
import { describe, expect, it } from "vitest";
import { EventQueue } from "../src/sim/events.ts";
import { Network } from "../src/sim/network.ts";
import { lineChart } from "../src/sim/plot.ts";
import { simulateFleet } from "../src/sim/fleet.ts";
import { SHOAL_POLICIES, type FleetScenario } from "../src/sim/fleet-scenario.ts";
import { calibrationScenario, fitCosts, inflationOf, passOf } from "../src/sim/calibration.ts";
import type { SwarmBenchResult } from "../src/swarm/swarm-bench.ts";

const scenario: FleetScenario = {
  hosts: 8, supernodes: 4, chunks: 120, chunkBytes: 256 * 1024, startupChunks: 30, hostNic: 125e6, supernodeNic: 1250e6, originEgress: 25e6,
  dcLatencyMs: 0.5, originLatencyMs: 20, cpuPerChunkMs: 2, onDemandInFlight: 8, backgroundInFlight: 4, announceEveryMs: 500, preheated: false, staggerMs: 0, seed: 7,
};
const image = scenario.chunks * scenario.chunkBytes;
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
/** Bytes hosts served each other (the peer bytes less the supernodes' seed). */
const hostToHost = (o: { peerBytes: number; seedBytes: number[] }) => o.peerBytes - sum(o.seedBytes);

describe("the network model", () => {
  it("shares a link max-min fairly: two transfers on one link take twice as long as one", () => {
    const events = new EventQueue();
    const net = new Network(events);
    const link = net.link("l", 1e6);
    const done: number[] = [];
    net.send([link], 1e6, 0, () => done.push(events.now));
    net.send([link], 1e6, 0, () => done.push(events.now));
    events.run();
    expect(done.map((t) => Math.round(t))).toEqual([2000, 2000]);
    expect(link.carried).toBeCloseTo(2e6, 0);
  });

  it("runs a stream at the pace of its slowest leg, a processor's at one core at most, and tells each chunk as it passes", () => {
    const events = new EventQueue();
    const net = new Network(events);
    const nic = net.link("nic", 10e6);
    const cores = net.link("cpu", 4, 1);
    const marks: number[] = [];
    let end = 0;
    // 10 chunks of 1 MB, 50 ms of CPU each: one core does 20 per second, the NIC 10
    net.send([nic, [cores, 0.05 / 1e6]], 10e6, 0, () => (end = events.now), { marks: Array.from({ length: 10 }, (_, k) => (k + 1) * 1e6), onMark: () => marks.push(Math.round(events.now)) });
    events.run();
    expect(Math.round(end)).toBe(1000);
    expect(marks).toEqual(Array.from({ length: 10 }, (_, k) => (k + 1) * 100));
    expect(cores.carried).toBeCloseTo(0.5, 3);
  });

  it("splits a machine's shared cores among its processes first (perProcess), by weight, then among each one's transfers", () => {
    const run = (perProcess: boolean, weight = 1) => {
      const events = new EventQueue();
      const net = new Network(events);
      const machine = net.link("machine", 1, 1, { perProcess });
      const busy = net.link("busy", 1, 1);
      const lone = net.link("lone", 1, 1);
      lone.weight = weight;
      let loneDone = 0;
      // one process with three jobs of 1 CPU-second, another with one
      for (let k = 0; k < 3; k++) net.send([[busy, 1], [machine, 1]], 1, 0, () => undefined);
      net.send([[lone, 1], [machine, 1]], 1, 0, () => (loneDone = events.now));
      events.run();
      return Math.round(loneDone);
    };
    expect(run(false)).toBe(4000); // a quarter of the core each
    expect(run(true)).toBe(2000); // half for each process
    expect(run(true, 3)).toBeCloseTo(1334, -1); // three quarters for the lone one, till its job is done (steps of 1 ms)
  });

  it("gives the others what a process on the shared cores does not use (its transfers' pace on their other legs)", () => {
    const events = new EventQueue();
    const net = new Network(events);
    const machine = net.link("machine", 1, 1, { perProcess: true });
    const busy = net.link("busy", 1, 1);
    const light = net.link("light", 1, 1);
    const nic = net.link("nic", 1e6);
    let busyDone = 0;
    // the light process streams 10 MB at 1 MB/s, 0.1 CPU-seconds per MB: it uses a tenth of a core
    net.send([nic, [light, 0.1 / 1e6], [machine, 0.1 / 1e6]], 10e6, 0, () => undefined);
    for (let k = 0; k < 3; k++) net.send([[busy, 1], [machine, 1]], 0.9, 0, () => (busyDone = events.now));
    events.run();
    expect(Math.round(busyDone)).toBe(3000); // 0.9 of the core for the busy one, not half
    expect(net.coresOf(busy)).toBeCloseTo(0.9, 2);
  });

  it("says what cores a process would get now if it wanted a whole one (coresOf), beside what the others want", () => {
    const events = new EventQueue();
    const net = new Network(events);
    const machine = net.link("machine", 1, 1, { perProcess: true });
    const [busy, light, idle] = ["busy", "light", "idle"].map((n) => net.link(n, 1, 1));
    const nic = net.link("nic", 1e6);
    net.send([[idle!, 1], [machine, 1]], 0.001, 0, () => undefined); // worked once, at the start
    net.send([nic, [light!, 0.1 / 1e6], [machine, 0.1 / 1e6]], 10e6, 500, () => undefined); // from 0.5 s on
    net.send([[busy!, 1], [machine, 1]], 5, 0, () => undefined);
    let seen = 0;
    events.after(1000, () => (seen = net.coresOf(idle!)));
    events.run();
    expect(seen).toBeCloseTo(0.45, 2); // now the light one keeps its 0.1; the busy one and it would halve the rest (0.5 when it worked)
  });

  it("stops a transfer that is cut, telling it nothing more", () => {
    const events = new EventQueue();
    const net = new Network(events);
    const link = net.link("l", 1e6);
    let ended = false;
    const cut = net.send([link], 1e6, 0, () => (ended = true));
    events.after(100, cut);
    events.run();
    expect(ended).toBe(false);
    expect(link.carried).toBeLessThan(0.2e6);
  });
});

describe("simulateFleet", () => {
  it("fetches each chunk from the origin once, whatever the number of hosts", () => {
    for (const hosts of [1, 8]) {
      const o = simulateFleet({ ...scenario, hosts });
      expect(o.originBytes / image).toBeCloseTo(1, 5);
      expect(o.firstWorkMs.every((t) => t >= (scenario.startupChunks * scenario.chunkBytes / scenario.originEgress) * 1000)).toBe(true);
      expect(o.allLocalPerHostMs.every(Number.isFinite)).toBe(true);
    }
  });

  it("spreads chunks over the supernodes by shoal's rendezvous ranking; another ranking moves the load", () => {
    const spread = simulateFleet(scenario).supernodeBytes;
    expect(Math.max(...spread) / (sum(spread) / spread.length)).toBeLessThan(1.5);
    // a ranking that ignores the chunk: the first supernode owns everything
    const skewed = simulateFleet(scenario, { ...SHOAL_POLICIES, rankSupernodes: (_key, urls) => [...urls] }).supernodeBytes;
    expect(skewed[0]).toBeGreaterThan(0);
    expect(skewed.slice(1).every((b) => b === 0)).toBe(true);
  });

  it("streams in the prefetcher's own order: spread, hosts starting together serve each other; in one order for all, they cannot", () => {
    const slow = { ...scenario, originEgress: 5e6 }; // seconds of streaming, for the tracker to learn who holds what
    const spread = simulateFleet(slow);
    expect(hostToHost(spread)).toBeGreaterThan(image);
    const lockstep = simulateFleet(slow, { ...SHOAL_POLICIES, prefetchOrder: (counts, first, opts) => prefetchOrder(counts, first, { ...opts, spread: false }) });
    expect(hostToHost(lockstep)).toBeLessThan(hostToHost(spread) / 4);
  });

  it("replays where each host's prefetch began each layer: begun together, hosts serve each other less than begun apart", () => {
    const slow = { ...scenario, originEgress: 5e6, layerChunks: [80, 40] };
    const together = simulateFleet({ ...slow, prefetchFrom: Array.from({ length: slow.hosts }, () => [0, 0]) });
    const apart = simulateFleet({ ...slow, prefetchFrom: Array.from({ length: slow.hosts }, (_, i) => [i * 10, i * 5]) });
    expect(hostToHost(together)).toBeLessThan(hostToHost(apart) / 4);
    expect(() => simulateFleet({ ...slow, layerChunks: [80, 41] })).toThrow(/not the image's 120/);
  });

  it("asks peers whom the fetcher's planPeerRun picks: a plan that finds no holder sends every run to the supernodes", () => {
    const none = simulateFleet({ ...scenario, staggerMs: 20_000 }, { ...SHOAL_POLICIES, planPeerRun: (_holders, ids) => ids[0]! });
    expect(none.peerBytes).toBe(0);
    expect(sum(none.supernodeBytes)).toBe(scenario.hosts * image);
    expect(simulateFleet({ ...scenario, staggerMs: 20_000 }).peerBytes).toBeGreaterThan(0);
  });

  it("announces at the pace the tracker asks (announcePaceMs): a tracker asking for a slow pace leaves hosts knowing less of each other", () => {
    const slow = { ...scenario, originEgress: 5e6 };
    const paced = simulateFleet(slow);
    const rare = simulateFleet(slow, { ...SHOAL_POLICIES, announcePaceMs: () => 30_000 });
    expect(hostToHost(rare)).toBeLessThan(hostToHost(paced) / 2);
  });

  it("lists the tracker's supernode as the seed: preheated, a lone host gets its chunks from it over the peer protocol", () => {
    const o = simulateFleet({ ...scenario, hosts: 1, supernodes: 1, preheated: true });
    expect(sum(o.seedBytes)).toBeGreaterThan(0);
    expect(o.peerBytes).toBe(sum(o.seedBytes));
    expect(o.originBytes).toBe(0);
  });

  it("API threads take the HTTP answers off a supernode's main thread: when serving costs its core, first work comes sooner", () => {
    const busy = { ...scenario, hosts: 16, supernodes: 1, preheated: true, seedListed: false, supernodeCpuPerChunkMs: 4 };
    const alone = simulateFleet(busy);
    const threads = simulateFleet({ ...busy, supernodeApiThreads: 4, supernodeCpuPerChunkMs: 1, supernodeThreadCpuPerChunkMs: 3 });
    expect(sum(alone.seedBytes)).toBe(0);
    expect(threads.firstWorkMs.at(-1)!).toBeLessThan(alone.firstWorkMs.at(-1)! / 2);
  });

  it("a supernode's background answers wait their turn as its AnswerGate's rule says: sent side by side, hosts starting later wait behind the others' prefetch", () => {
    // one supernode whose NIC is what the fleet shares, answering over HTTP only
    const later = { ...scenario, hosts: 24, supernodes: 1, supernodeNic: 200e6, preheated: true, seedListed: false, staggerMs: 2000 };
    const gated = simulateFleet(later);
    const sideBySide = simulateFleet(later, { ...SHOAL_POLICIES, backgroundMayStart: () => true });
    expect(sum(gated.seedBytes)).toBe(0);
    expect(gated.firstWorkMs.at(-1)!).toBeLessThan(sideBySide.firstWorkMs.at(-1)! / 2);
    expect(gated.allLocalPerHostMs.every(Number.isFinite)).toBe(true);
  });

  it("hedges a chunk onto the supernode when its peer is slower than the fetcher's hedgeDelayMs: with none, nothing is hedged", () => {
    // the kept real 16-host run's scenario: 17 processes on 2 cores, busy peers, chunks fetched alone
    const real = JSON.parse(readFileSync(new URL("../src/sim/swarm-2026-12-07b.json", import.meta.url), "utf8")) as SwarmBenchResult;
    const fit = fitCosts(real);
    const pass = passOf(real, 16, true)!;
    const crowded = calibrationScenario(real, fit, 16, true, inflationOf(fit, 16, pass, true));
    expect(simulateFleet(crowded).hedges).toBeGreaterThan(0);
    expect(simulateFleet(crowded, { ...SHOAL_POLICIES, hedgeDelayMs: () => Number.POSITIVE_INFINITY }).hedges).toBe(0);
  });

  it("a supernode lost mid-peak: every host still gets the whole image, from the others", () => {
    const o = simulateFleet({ ...scenario, preheated: true, supernodeLostAtMs: 50 });
    expect(o.allLocalPerHostMs.every(Number.isFinite)).toBe(true);
    const whole = simulateFleet({ ...scenario, preheated: true });
    expect(o.supernodeBytes[0]! + o.seedBytes[0]!).toBeLessThan(whole.supernodeBytes[0]! + whole.seedBytes[0]!);
  });
});

describe("lineChart", () => {
  it("draws each series as a polyline with its points, on a log axis of hosts", () => {
    const svg = lineChart("t", "hosts", "s", [{ name: "a", points: [[1, 1], [10, 2], [1000, 3]] }, { name: "b <c>", points: [[1, 0.5], [1000, 1]] }]);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    expect(svg.match(/<circle /g)).toHaveLength(5);
    expect(svg).toContain("b &lt;c&gt;");
    expect(svg).toContain(">1,000<");
  });
});
