// What serving a chunk over HTTP costs a real supernode (issue 29: the
// simulator found the supernodes' one core giving way first at 1,000 hosts,
// at 0.59 ms per chunk as fitted from the swarm bench). A docker-registry
// on loopback holds the realistic image, converted; `shoal supernode`
// preheats it, then C clients at once ask for every chunk of every layer
// in runs of R chunks, as agents' prefetchers do, for `--rounds` rounds.
// Twice, each with a fresh supernode: reading every chunk from the store
// (--hot-chunks 0, the baseline), then through the hot chunks in memory.
// Prints the supernode's CPU per chunk (user and kernel apart, from /proc),
// the bytes per second it served, and the ratio. --cli runs another
// checkout's shoal.
//   node bench/src/supernode-serve.ts [--clients 16] [--run 10] [--rounds 3] [--cli PATH/cli/src/main.ts]
// SNPROF=DIR writes the supernode's CPU profile there.
import { parseArgs } from "node:util";
import { chunksRoute } from "@shoal/swarm";
import { cpuTimesOf } from "./proc-cpu.ts";
import { startSupernodeRig } from "./supernode-rig.ts";
import { DEFAULT_CLI } from "./shoal-cli.ts";

const { values } = parseArgs({ options: { clients: { type: "string", default: "16" }, run: { type: "string", default: "10" }, rounds: { type: "string", default: "3" }, threads: { type: "string", default: "2" }, cli: { type: "string", default: DEFAULT_CLI } } });
const clients = Number(values.clients);
const runChunks = Number(values.run);
const rounds = Number(values.rounds);

const rig = await startSupernodeRig({ cli: values.cli, log: (s) => console.error(s) });
/** A fresh supernode with `args`, preheated; C clients fetch every chunk `rounds` times; what it cost the supernode. */
async function serve(name: string, args: string[]): Promise<{ sec: number; bytes: number; served: number; user: number; system: number; main: number }> {
  const sn = await rig.supernode(name, args);
  try {
    const { url, layers, pid } = sn;
    const requests = layers.flatMap(({ ref, index }) => Array.from({ length: Math.ceil(index.chunkCount / runChunks) }, (_, k) => chunksRoute(ref, k * runChunks, Math.min(index.chunkCount, (k + 1) * runChunks) - 1)));
    const chunks = layers.reduce((n, l) => n + l.index.chunkCount, 0);
    const before = cpuTimesOf(pid);
    const mainBefore = cpuTimesOf(pid, pid);
    const t0 = performance.now();
    let bytes = 0;
    for (let r = 0; r < rounds; r++) {
      await Promise.all(Array.from({ length: clients }, async (_, c) => {
        // each client walks the requests from its own place, as hosts of a fleet do not ask in step
        for (let k = 0; k < requests.length; k++) {
          const res = await fetch(`${url}${requests[(k + c * 7) % requests.length]}`);
          if (res.status !== 200) throw new Error(`chunks: HTTP ${res.status} ${await res.text()}`);
          const got = (await res.arrayBuffer()).byteLength;
          bytes += got;
        }
      }));
    }
    const sec = (performance.now() - t0) / 1000;
    const after = cpuTimesOf(pid);
    const mainAfter = cpuTimesOf(pid, pid);
    return { sec, bytes, served: chunks * clients * rounds, user: after.user - before.user, system: after.system - before.system, main: mainAfter.user + mainAfter.system - mainBefore.user - mainBefore.system };
  } finally {
    await sn.stop();
  }
}

try {
  const report = (what: string, r: Awaited<ReturnType<typeof serve>>) => {
    const us = (s: number) => ((s * 1e6) / r.served).toFixed(0);
    console.log(`${what}: ${r.served} chunks (${(r.bytes / r.served / 1024).toFixed(0)} KiB each) in runs of ${runChunks}, ${clients} clients at once: ${r.sec.toFixed(2)} s, ${(r.bytes / r.sec / 2 ** 20).toFixed(0)} MiB/s; supernode CPU per chunk ${us(r.user + r.system)} µs (user ${us(r.user)}, kernel ${us(r.system)}), of its main thread ${us(r.main)} µs`);
    return (r.user + r.system) / r.served;
  };
  const store = report("from the store (--hot-chunks 0)", await serve("store", ["--hot-chunks", "0"]));
  const hot = report("through the hot chunks (default)", await serve("hot", []));
  console.log(`hot / store: ${(hot / store).toFixed(2)}x the CPU per chunk`);
  const threads = report(`hot chunks, --api-threads ${values.threads}`, await serve("threads", ["--api-threads", values.threads]));
  console.log(`--api-threads ${values.threads} / one thread: ${(threads / hot).toFixed(2)}x the CPU per chunk`);
} finally {
  await rig.close();
}
