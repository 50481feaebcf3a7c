// Run shoal's benchmarks: `npm run bench -- [convert] [index] [fuse]` (all when none named).
// The lazy-start bench (network namespace, 100 Mbit/s registry) runs on its own:
// `npx node bench/src/lazy/main.ts`.
// Each compares shoal with its baseline in the same run and prints the figures.
import { runConvertBench } from "./convert-bench.ts";
import { runIndexBench } from "./index-bench.ts";
import { runFuseBench } from "./fuse-bench.ts";

const MiB = 1024 * 1024;
const wanted = new Set(process.argv.slice(2));
const want = (name: string) => wanted.size === 0 || wanted.has(name);

if (want("convert")) {
  const r = await runConvertBench();
  console.log(`convert: layer ${(r.tarBytes / MiB).toFixed(1)} MiB tar, ${(r.gzipBytes / MiB).toFixed(1)} MiB gzip`);
  console.log(`  gzip -dc | gzip -6 : ${r.baselineSec.toFixed(2)} s`);
  console.log(`  shoal convertLayer : ${r.shoalSec.toFixed(2)} s  (lazy blob ${(r.shoalBytes / MiB).toFixed(1)} MiB)`);
  console.log(`  speedup            : ${r.speedup.toFixed(2)}x  (goal > 1)`);
}
if (want("index")) {
  const r = runIndexBench();
  console.log(`index: ${r.entries} entries, ${r.bytes} bytes encoded`);
  console.log(`  bytes per entry             : ${r.perEntry.toFixed(1)}  (paths ${(r.pathBytes / r.entries).toFixed(1)} bytes on average)`);
  console.log(`  bytes per entry less paths  : ${r.perEntryLessPaths.toFixed(1)}  (goal < 64)`);
  console.log(`  load (decode + path lookup) : ${r.loadMs.toFixed(1)} ms  (goal < 100 ms, median of 9)`);
}
if (want("fuse")) {
  const r = await runFuseBench();
  const mibps = (sec: number) => (r.bytes / MiB / sec).toFixed(0);
  console.log(`fuse: realistic image, ${r.files} files, ${(r.bytes / MiB).toFixed(1)} MiB, ${r.entries} entries; page cache dropped before each pass`);
  console.log(`  read all files, local disk (umoci unpack)      : ${r.localReadSec.toFixed(2)} s = ${mibps(r.localReadSec)} MiB/s`);
  console.log(`  read all files, shoal mount (keeper)           : ${r.keeper.readSec.toFixed(2)} s = ${mibps(r.keeper.readSec)} MiB/s, ${r.keeper.readOps} FUSE requests`);
  console.log(`  read all files, shoal mount (--fuse-keeper off): ${r.direct.readSec.toFixed(2)} s = ${mibps(r.direct.readSec)} MiB/s, ${r.direct.readOps} FUSE requests`);
  console.log(`  read throughput ratio                          : ${r.readRatio.toFixed(2)}x of local  (goal >= 0.5)`);
  console.log(`  stat walk, local disk                          : ${(r.localStatSec * 1000).toFixed(0)} ms`);
  console.log(`  stat walk, shoal mount (keeper)                : ${(r.keeper.statSec * 1000).toFixed(0)} ms, ${r.keeper.statOps} FUSE requests`);
  console.log(`  stat walk, shoal mount (--fuse-keeper off)     : ${(r.direct.statSec * 1000).toFixed(0)} ms, ${r.direct.statOps} FUSE requests`);
  console.log(`  stat walk slowdown                             : ${r.statRatio.toFixed(2)}x  (goal <= 3)`);
  console.log(`  the keeper's relay, per FUSE request           : ${r.keeperUsPerRequest.toFixed(1)} us`);
}
