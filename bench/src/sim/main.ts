// The fleet at scale (issue 29), one command: calibration of the fleet
// simulator against the real swarm bench, then its predictions.
//   node bench/src/sim/main.ts [--real FILE] [--save FILE] [--hosts 100,1000,10000] [--supernodes 1,10] [--svg DIR] [--only NAME] [--step MS] [--calibration-only]
// Without --real it runs bench/src/swarm for real at N = 1, 4, 8, 16 (as
// root; about 5 minutes) and --save keeps that result; --real FILE reads a
// kept one (bench/src/sim/swarm-*.json) and takes seconds.
// Predictions use the costs measured there (without this machine's
// inflation), on hosts of their own: the realistic image (669 chunks, 131
// read before first work), 1 Gbit/s hosts, 10 Gbit/s supernodes, a
// 200 Mbit/s origin; everyone at once cold and preheated, staggered over
// 10 s, and one supernode lost mid-peak.
// --svg DIR: also write DIR/sim-first-work.svg and DIR/sim-origin.svg.
// --only NAME: that scenario alone; --step MS: the network's step (coarser
// for 10,000 hosts: 50); --calibration-only: no predictions.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runSwarmBench, type SwarmBenchResult } from "../swarm/swarm-bench.ts";
import { calibrate, fitCosts, formatCalibration } from "./calibration.ts";
import { predict, predictionScenarios, formatPredictions, PREDICTED_API_THREADS, type Prediction } from "./predictions.ts";
import { lineChart, type Series } from "./plot.ts";

const { values } = parseArgs({
  options: {
    real: { type: "string" }, save: { type: "string" }, hosts: { type: "string", default: "1,100,1000" }, supernodes: { type: "string", default: "10" }, svg: { type: "string" },
    only: { type: "string" }, step: { type: "string" }, "calibration-only": { type: "boolean", default: false },
  },
});
const real: SwarmBenchResult = values.real
  ? (JSON.parse(await readFile(values.real, "utf8")) as SwarmBenchResult)
  : await runSwarmBench({ hosts: [1, 4, 8, 16], skipBaseline: true, preheat: true, log: (l) => console.error(l) });
if (values.save) await writeFile(values.save, `${JSON.stringify(real, null, 1)}\n`);

const fit = fitCosts(real);
console.log("## Calibration: the swarm bench, real against simulated\n");
console.log(formatCalibration(fit, calibrate(real, fit, real.rows.map((r) => r.n))));

if (values["calibration-only"]) process.exit(0);
console.log("\n## Predictions\n");
const predictions: Prediction[] = [];
for (const supernodes of values.supernodes.split(",").map(Number)) {
  for (const hosts of values.hosts.split(",").map(Number)) {
    for (const named of predictionScenarios(fit, hosts, supernodes)) {
      if (values.only !== undefined && named.name !== values.only) continue;
      const p = predict(values.step !== undefined ? { ...named, scenario: { ...named.scenario, stepMs: Number(values.step) } } : named);
      predictions.push(p);
      console.error(`${p.name}: ${hosts} hosts, ${supernodes} supernodes, ${p.wallSec.toFixed(1)} s`);
    }
  }
}
console.log(formatPredictions(predictions));

if (values.svg) {
  // against N, with the most supernodes asked for
  const most = Math.max(...predictions.map((p) => p.supernodes));
  const series = (pick: (p: Prediction) => number, ...names: string[]): Series[] =>
    names.map((name) => ({ name, points: predictions.filter((p) => p.name === name && p.supernodes === most).map((p) => [p.hosts, pick(p)]) }));
  const what = `${most} supernodes (simulated)`;
  await writeFile(join(values.svg, "sim-first-work.svg"), lineChart(`Time to first work, p99, ${what}`, "hosts", "seconds", series((p) => p.firstWorkSec.p99, "peak, cold", "peak, preheated", "staggered, preheated", `peak, preheated, ${PREDICTED_API_THREADS} API threads`, "supernode lost")));
  await writeFile(join(values.svg, "sim-origin.svg"), lineChart(`Origin egress, ${what}`, "hosts", "images' worth", series((p) => p.originImages, "peak, cold", "peak, preheated", "staggered, preheated", "supernode lost")));
}
