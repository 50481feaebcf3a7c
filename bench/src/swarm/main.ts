// Swarm distribution, baseline vs shoal, N hosts at once:
//   node bench/src/swarm/main.ts [--hosts 1,4,8,16] [--registry-rate MBIT] [--host-rate MBIT]
//     [--origin-fallback true|false] [--preheat] [--skip-baseline] [--timeout SEC] [--json]
// Needs root (network namespaces, bridge, FUSE), skopeo, docker-registry, debootstrap (first build of the image).
import { parseArgs } from "node:util";
import { formatSwarm, runSwarmBench } from "./swarm-bench.ts";

const { values } = parseArgs({
  options: {
    hosts: { type: "string", default: "1,4,8,16" },
    "registry-rate": { type: "string", default: "200" },
    "host-rate": { type: "string", default: "1000" },
    "origin-fallback": { type: "string", default: "true" },
    preheat: { type: "boolean", default: false },
    "skip-baseline": { type: "boolean", default: false },
    timeout: { type: "string", default: "600" },
    json: { type: "boolean", default: false },
  },
});
const hosts = values.hosts.split(",").map((s) => Number(s.trim()));
if (values["origin-fallback"] !== "true" && values["origin-fallback"] !== "false") throw new Error("--origin-fallback must be true or false");
const r = await runSwarmBench({
  hosts,
  registryMbit: Number(values["registry-rate"]),
  hostMbit: Number(values["host-rate"]),
  originFallback: values["origin-fallback"] === "true",
  preheat: values.preheat,
  skipBaseline: values["skip-baseline"],
  timeoutSec: Number(values.timeout),
});
for (const line of formatSwarm(r)) console.log(line);
if (values.json) console.log(JSON.stringify(r, null, 2));
