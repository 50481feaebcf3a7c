// Time to first useful work through containerd, baseline (ctr image pull + ctr run, overlayfs)
// against shoal (shoal pull + ctr run --snapshotter shoal):
//   node bench/src/containerd/main.ts [--prefetch on|off] [--rate MBIT] [--json]
// Needs root (network namespace, mounts), containerd + runc, debootstrap, skopeo, docker-registry.
import { parseArgs } from "node:util";
import { formatContainerdBench, runContainerdBench } from "./containerd-bench.ts";

const { values } = parseArgs({
  options: {
    prefetch: { type: "string", default: "off" },
    rate: { type: "string", default: "100" },
    json: { type: "boolean", default: false },
  },
});
if (values.prefetch !== "on" && values.prefetch !== "off") throw new Error("--prefetch must be on or off");
const rateMbit = Number(values.rate);
if (!(rateMbit > 0)) throw new Error("--rate must be a positive number of Mbit/s");

const r = await runContainerdBench({ prefetch: values.prefetch, rateMbit });
for (const line of formatContainerdBench(r)) console.log(line);
if (values.json) console.log(JSON.stringify(r, null, 2));
