// The fleet simulator's first cut (issue 29), one scenario over N hosts:
// the realistic image's size (266 chunks of 256 KiB), 2 supernodes, a
// 200 Mbit/s origin, 1 Gbit/s hosts, everyone starting at once, cold or
// preheated. Prints time to first work (p50, max), when every host held
// the whole image, origin egress and the busiest supernode against its
// fair share. Not calibrated yet: the figures are the model's, not shoal's.
//   node bench/src/sim/main.ts [--hosts 1,4,8,16,64] [--supernodes 2] [--stagger-ms 0] [--svg DIR]
// --svg DIR: also write DIR/sim-first-work.svg and DIR/sim-origin.svg (against N).
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { simulateFleet, type FleetScenario } from "./fleet.ts";
import { lineChart, type Series } from "./plot.ts";

const { values } = parseArgs({ options: { hosts: { type: "string", default: "1,4,8,16,64" }, supernodes: { type: "string", default: "2" }, "stagger-ms": { type: "string", default: "0" }, svg: { type: "string" } } });
const base: FleetScenario = {
  hosts: 1, supernodes: Number(values.supernodes), chunks: 266, chunkBytes: 256 * 1024, startupChunks: 52,
  hostNic: 125e6, supernodeNic: 1250e6, originEgress: 25e6, dcLatencyMs: 0.5, originLatencyMs: 20, cpuPerChunkMs: 2,
  onDemandInFlight: 8, backgroundInFlight: 4, announceEveryMs: 1000, preheated: false, staggerMs: Number(values["stagger-ms"]), seed: 1,
};
const image = base.chunks * base.chunkBytes;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const firstWork: Series[] = [{ name: "cold, p50", points: [] }, { name: "preheated, p50", points: [] }];
const egress: Series[] = [{ name: "cold", points: [] }, { name: "preheated", points: [] }];
console.log("hosts  preheated  first work p50   max       all local   origin/image  busiest supernode/fair  peer bytes/image  wall");
for (const hosts of values.hosts.split(",").map(Number)) {
  for (const preheated of [false, true]) {
    const t = performance.now();
    const o = simulateFleet({ ...base, hosts, preheated });
    const fair = o.supernodeBytes.reduce((a, b) => a + b, 0) / o.supernodeBytes.length;
    firstWork[preheated ? 1 : 0]!.points.push([hosts, o.firstWorkMs[Math.floor(hosts / 2)]! / 1000]);
    egress[preheated ? 1 : 0]!.points.push([hosts, o.originBytes / image]);
    console.log([
      String(hosts).padEnd(6), String(preheated).padEnd(10), s(o.firstWorkMs[Math.floor(hosts / 2)]!).padEnd(16), s(o.firstWorkMs.at(-1)!).padEnd(9),
      s(o.allLocalMs).padEnd(11), `${(o.originBytes / image).toFixed(2)}x`.padEnd(13), `${(Math.max(...o.supernodeBytes) / fair).toFixed(2)}x`.padEnd(23),
      `${(o.peerBytes / image).toFixed(1)}x`.padEnd(17), `${((performance.now() - t) / 1000).toFixed(1)} s`,
    ].join(" "));
  }
}
if (values.svg) {
  const what = `${base.supernodes} supernodes, everyone at once (simulated, not calibrated)`;
  await writeFile(join(values.svg, "sim-first-work.svg"), lineChart(`Time to first work, ${what}`, "hosts", "seconds", firstWork));
  await writeFile(join(values.svg, "sim-origin.svg"), lineChart(`Origin egress, ${what}`, "hosts", "images' worth", egress));
}
