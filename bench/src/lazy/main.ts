// Time to first useful work, baseline vs shoal:
//   node bench/src/lazy/main.ts [--prefetch on|off] [--rate MBIT] [--chunk-size BYTES] [--passes metadata-walk,cold,recording,fleet-trace,dc-first,dc-second,all-local,all-local-next] [--layer-modes block,fuse] [--agent-args="--flag value ..."] [--baseline-only] [--json]
// --prefetch is the cold pass's (default off); the later passes run as they say. fleet-trace runs recording first (its trace), dc-second runs dc-first (its supernode's cache).
// Needs root (network namespace, mounts), debootstrap, skopeo, umoci, docker-registry.
import { parseArgs } from "node:util";
import { formatFirstWork, runFirstWorkBench } from "./first-work.ts";

const { values } = parseArgs({
  options: {
    prefetch: { type: "string", default: "off" },
    rate: { type: "string", default: "100" },
    "chunk-size": { type: "string" },
    "baseline-only": { type: "boolean", default: false },
    passes: { type: "string" },
    "agent-args": { type: "string" },
    json: { type: "boolean", default: false },
    "layer-modes": { type: "string", default: "block,fuse" },
  },
});
if (values.prefetch !== "on" && values.prefetch !== "off") throw new Error("--prefetch must be on or off");
const rateMbit = Number(values.rate);
if (!(rateMbit > 0)) throw new Error("--rate must be a positive number of Mbit/s");

const chunkSize = values["chunk-size"] ? Number(values["chunk-size"]) : undefined;
const passes = values.passes?.split(",").map((p) => p.trim()).filter(Boolean);
const layerModes = values["layer-modes"].split(",").map((m) => m.trim());
if (!layerModes.every((m) => m === "block" || m === "fuse")) throw new Error("--layer-modes takes block and/or fuse, comma-separated");
const r = await runFirstWorkBench({ layerModes: layerModes as Array<"block" | "fuse">, prefetch: values.prefetch, rateMbit, baselineOnly: values["baseline-only"], ...(chunkSize ? { chunkSize } : {}), ...(passes ? { passes } : {}), ...(values["agent-args"] ? { agentArgs: values["agent-args"].split(/\s+/).filter(Boolean) } : {}) });
for (const line of formatFirstWork(r)) console.log(line);
if (values.json) console.log(JSON.stringify(r, null, 2));
