// The tracker (PeerTable) at fleet scale (issue 29): one layer held by
// 100, 1,000 and 10,000 hosts, each announcing a chunk bitmap of the
// realistic image's layer (669 chunks, half held), as a fleet streaming
// one image does. Prints the CPU of one peers question and of one
// re-announce, and the heap the table takes (after a full GC), at each size;
// then 10,000 hosts holding 50 layers each, with bitmaps (the default
// bounds: 500,000 holdings, 64 MiB of bitmaps).
//   node --expose-gc bench/src/tracker-scale.ts
import { randomBytes } from "node:crypto";
import { PeerTable } from "@shoal/supernode";
import { encodeChunkBitmap } from "@shoal/swarm";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const digest = () => `sha256:${randomBytes(32).toString("hex")}`;
const peerId = () => `12D3KooW${randomBytes(20).toString("hex")}`;
const bitmap = (chunks: number) => encodeChunkBitmap(chunks, () => Math.random() < 0.5);
/** Mean µs of `fn` over about `ms` of calls. */
const timed = (ms: number, fn: (k: number) => void) => {
  const t0 = performance.now();
  let k = 0;
  while (performance.now() - t0 < ms) fn(k++);
  return ((performance.now() - t0) * 1000) / k;
};

const layer = digest();
console.log("hosts   peers question   re-announce   heap");
for (const hosts of [100, 1_000, 10_000]) {
  gc();
  const before = process.memoryUsage().heapUsed;
  const table = new PeerTable();
  const ids = Array.from({ length: hosts }, peerId);
  const bitmaps = Array.from({ length: 64 }, () => bitmap(669));
  for (const id of ids) table.announce({ peerId: id, addrs: ["/ip4/10.0.0.1/tcp/7071"], layers: [layer], chunks: { [layer]: bitmaps[Math.floor(Math.random() * 64)]! } });
  gc();
  const heap = process.memoryUsage().heapUsed - before;
  const ask = timed(1000, () => table.peers(layer));
  const again = timed(1000, (k) => table.announce({ peerId: ids[k % hosts]!, addrs: ["/ip4/10.0.0.1/tcp/7071"], layers: [layer], chunks: { [layer]: bitmaps[k % 64]! } }));
  console.log(`${String(hosts).padEnd(7)} ${`${ask.toFixed(1)} µs`.padEnd(16)} ${`${again.toFixed(1)} µs`.padEnd(13)} ${(heap / 1048576).toFixed(1)} MiB`);
}

gc();
const before = process.memoryUsage().heapUsed;
const table = new PeerTable();
const layers = Array.from({ length: 50 }, digest);
for (let h = 0; h < 10_000; h++) {
  const chunks = Object.fromEntries(layers.map((l) => [l, bitmap(669)]));
  table.announce({ peerId: peerId(), addrs: ["/ip4/10.0.0.1/tcp/7071"], layers: layers.map((l) => JSON.parse(JSON.stringify(l)) as string), chunks });
}
gc();
const s = table.stats();
console.log(`10,000 hosts × 50 layers with bitmaps: ${s.peers} peers, ${s.holdings} holdings, ${(s.bitmapBytes / 1048576).toFixed(1)} MiB of bitmaps, ${s.evicted} evicted; heap ${((process.memoryUsage().heapUsed - before) / 1048576).toFixed(1)} MiB`);
