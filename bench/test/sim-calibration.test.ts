// A real 4-host swarm and its simulation agree (issue 29). The swarm bench runs for real in network
// namespaces (the realistic image, one supernode, N = 1 and 4, cold and preheated); the simulator's
// costs are fitted on three of those passes (cold N = 1 and 4, preheated N = 1), and the fourth, the
// preheated N = 4, is simulated with its agents' prefetch beginning where the real ones began: where
// its bytes came from agrees within the tolerance: the peers' and of those the supernode's seed's.
// (Without that replay the seed's share missed by up to 30%: the agents' random starting chunks
// alone moved it over 144–215 MiB from run to run.) The few chunks that go over HTTP (when the seed
// is busy, or before the first peer list) are about 6% of the bytes, too few to be steady: both
// sides are asserted to keep them a small share. Times are not compared here (no timing in tests);
// bench/RESULTS.md has them.
import { expect, it } from "vitest";
import { runSwarmBench } from "../src/swarm/swarm-bench.ts";
import { calibrate, errorOf, fitCosts, passOf, TOLERANCE } from "../src/sim/calibration.ts";

it("a real preheated 4-host swarm and its simulation take their bytes from the same places, within the tolerance", async () => {
  const lines: string[] = [];
  const real = await runSwarmBench({ hosts: [1, 4], skipBaseline: true, preheat: true, log: (l) => lines.push(l) });
  const fit = fitCosts(real);
  const row = calibrate(real, fit, [4]).find((r) => r.preheated);
  expect(row, lines.join("\n")).toBeDefined();
  const { real: r, sim: s } = row!;
  expect(passOf(real, 4, true)!.prefetchLayers?.from, "where the real agents' prefetch began").toHaveLength(4);
  expect(r.originBytes).toBe(0);
  expect(s.originBytes).toBe(0);
  const figures = `real ${JSON.stringify(r)}, simulated ${JSON.stringify(s)}`;
  for (const k of ["peerBytes", "seedBytes"] as const) {
    expect(r[k], k).toBeGreaterThan(0);
    expect(Math.abs(errorOf(s[k], r[k])), `${k}: ${figures}`).toBeLessThanOrEqual(TOLERANCE);
  }
  for (const f of [r, s]) expect(f.supernodeBytes / (f.supernodeBytes + f.peerBytes), `the supernode's HTTP share: ${figures}`).toBeLessThan(0.15);
}, 900_000);
