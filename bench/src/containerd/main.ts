// Time to first useful work through containerd: baseline (ctr image pull + ctr run, overlayfs),
// shoal (shoal pull + ctr run --snapshotter shoal), shoal-recording and shoal-fleet-trace (the same,
// each with a fresh containerd and agent through a supernode on the registry's side of the link: the
// first records the fleet's startup trace, the second prefetches it first) and stargz (ctr-remote
// image rpull of an eStargz copy + ctr run --snapshotter stargz), in one run:
//   node bench/src/containerd/main.ts [--prefetch on|off] [--rate MBIT]
//                                     [--only baseline,shoal,shoal-recording,shoal-fleet-trace,stargz]
//                                     [--stargz-form optimized|estargz] [--json]
// --prefetch is the shoal pass's; shoal-fleet-trace runs shoal-recording before it even when not asked for.
// Needs root (network namespace, mounts), containerd + runc, debootstrap, skopeo, docker-registry;
// the stargz pass installs what it needs from Debian (golang-go, the stargz snapshotter library,
// stargz-snapshotter for ctr-remote) and builds its daemon into .cache/stargz/.
import { parseArgs } from "node:util";
import { CONTAINERD_PASSES, formatContainerdBench, runContainerdBench, type ContainerdPass } from "./containerd-bench.ts";

const { values } = parseArgs({
  options: {
    prefetch: { type: "string", default: "off" },
    rate: { type: "string", default: "100" },
    only: { type: "string" },
    "stargz-form": { type: "string", default: "optimized" },
    json: { type: "boolean", default: false },
  },
});
if (values.prefetch !== "on" && values.prefetch !== "off") throw new Error("--prefetch must be on or off");
const rateMbit = Number(values.rate);
if (!(rateMbit > 0)) throw new Error("--rate must be a positive number of Mbit/s");
const stargzForm = values["stargz-form"];
if (stargzForm !== "optimized" && stargzForm !== "estargz") throw new Error("--stargz-form must be optimized or estargz");
const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
for (const p of only ?? []) {
  if (!(CONTAINERD_PASSES as readonly string[]).includes(p)) throw new Error(`--only: unknown pass ${p} (passes: ${CONTAINERD_PASSES.join(", ")})`);
}

const r = await runContainerdBench({ prefetch: values.prefetch, rateMbit, stargzForm, ...(only ? { only: only as ContainerdPass[] } : {}) });
for (const line of formatContainerdBench(r)) console.log(line);
if (values.json) console.log(JSON.stringify(r, null, 2));
