// The tracker's memory at its bound: 10,000 peers announcing 50 layers each
// (500,000 holdings, the default --tracker-max-holdings), heap measured after
// a full GC. Two fleets: every peer holding the same 50 layers (a real
// fleet: a few images everywhere), and every holding a different layer (a
// member flooding the tracker with made-up digests, the worst case).
//   node --expose-gc bench/src/tracker-memory.ts
import { randomBytes } from "node:crypto";
import { PeerTable } from "@shoal/supernode";

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with node --expose-gc");
const digest = () => `sha256:${randomBytes(32).toString("hex")}`;

for (const fleet of ["shared", "distinct"] as const) {
  const shared = Array.from({ length: 50 }, digest);
  gc();
  const before = process.memoryUsage().heapUsed;
  const table = new PeerTable();
  for (let p = 0; p < 10_000; p++) {
    // each announce parses its own strings, as JSON bodies do
    const layers = fleet === "shared" ? shared.map((s) => JSON.parse(JSON.stringify(s)) as string) : Array.from({ length: 50 }, digest);
    table.announce({ peerId: `12D3KooW${randomBytes(20).toString("hex")}`, addrs: ["/ip4/10.0.0.1/tcp/7071"], layers });
  }
  gc();
  const bytes = process.memoryUsage().heapUsed - before;
  const { holdings } = table.stats();
  console.log(`${fleet.padEnd(8)} ${holdings} holdings: heap ${(bytes / 1048576).toFixed(1)} MiB, ${Math.round(bytes / holdings)} bytes per holding`);
}
