// The fleet simulator's first cut: its outcome follows shoal's own policies
// (swap one and the outcome moves), and it keeps what the model promises.
import { prefetchOrder } from "@shoal/fetch";
import { rankSupernodes } from "@shoal/swarm";
import { describe, expect, it } from "vitest";
import { EventQueue } from "../src/sim/events.ts";
import { Network } from "../src/sim/network.ts";
import { lineChart } from "../src/sim/plot.ts";
import { simulateFleet, type FleetScenario } from "../src/sim/fleet.ts";

const scenario: FleetScenario = {
  hosts: 8, supernodes: 4, chunks: 120, chunkBytes: 256 * 1024, startupChunks: 30, hostNic: 125e6, supernodeNic: 1250e6, originEgress: 25e6,
  dcLatencyMs: 0.5, originLatencyMs: 20, cpuPerChunkMs: 2, onDemandInFlight: 8, backgroundInFlight: 4, announceEveryMs: 500, preheated: false, staggerMs: 0, seed: 7,
};
const image = scenario.chunks * scenario.chunkBytes;

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
});

describe("simulateFleet", () => {
  it("fetches each chunk from the origin once per supernode that owns it, whatever the number of hosts", () => {
    for (const hosts of [1, 8]) {
      const o = simulateFleet({ ...scenario, hosts });
      expect(o.originBytes / image).toBeCloseTo(1, 5);
      expect(o.firstWorkMs.every((t) => t >= (scenario.startupChunks * scenario.chunkBytes / scenario.originEgress) * 1000)).toBe(true);
    }
  });

  it("spreads chunks over the supernodes by shoal's rendezvous ranking; another ranking moves the load", () => {
    const spread = simulateFleet(scenario).supernodeBytes;
    const fair = spread.reduce((a, b) => a + b, 0) / spread.length;
    expect(Math.max(...spread) / fair).toBeLessThan(1.5);
    // a ranking that ignores the chunk: the first supernode owns everything
    const skewed = simulateFleet(scenario, { prefetchOrder, rankSupernodes: (_key, urls) => [...urls] }).supernodeBytes;
    expect(skewed.slice(1).every((b) => b === 0)).toBe(true);
    expect(skewed[0]).toBe(spread.reduce((a, b) => a + b, 0));
    // and the real one is what the fleet called
    expect(simulateFleet(scenario, { rankSupernodes, prefetchOrder }).supernodeBytes).toEqual(spread);
  });

  it("streams in the prefetcher's own order: spread, hosts starting together serve each other; in one order for all, they cannot", () => {
    const spread = simulateFleet(scenario);
    expect(spread.peerBytes).toBeGreaterThan(image);
    const lockstep = simulateFleet(scenario, { rankSupernodes, prefetchOrder: (counts, first, opts) => prefetchOrder(counts, first, { ...opts, spread: false }) });
    expect(lockstep.peerBytes).toBe(0);
  });

  it("hosts that start later get chunks from peers the tracker's PeerTable names", () => {
    const o = simulateFleet({ ...scenario, staggerMs: 20_000 });
    expect(o.peerBytes).toBeGreaterThan(0);
    expect(o.originBytes / image).toBeCloseTo(1, 5);
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
