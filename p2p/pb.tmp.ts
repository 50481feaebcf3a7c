import { ChunkPeer, generateSwarmKey } from "./src/index.ts";
import { createHash, randomBytes } from "node:crypto";
const key = generateSwarmKey();
const chunks = new Map<string, Buffer>();
for (let i = 0; i < 300; i++) { const b = randomBytes(100_000); chunks.set(`sha256:${createHash("sha256").update(b).digest("hex")}`, b); }
const provider = { async readCompressed(d: string) { return chunks.get(d); } };
const a = new ChunkPeer({ provider }, { swarmKey: key, uploadRate: 1e12, maxUploads: 64 });
const b = new ChunkPeer({ provider: { async readCompressed() { return undefined; } } }, { swarmKey: key });
await a.start(); await b.start();
const target = { peerId: a.peerId, addrs: a.addrs };
await b.fetchChunk(target, [...chunks.keys()][0]!);
const digests = [...chunks.keys()];
const c0 = process.cpuUsage(); const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: 4 }, async () => { while (next < digests.length) await b.fetchChunk(target, digests[next++]!); }));
const c = process.cpuUsage(c0);
console.log(`${digests.length} chunks ${(30).toFixed(0)} MB: wall ${((performance.now() - t0) / 1000).toFixed(2)} s, cpu user ${(c.user / 1e6).toFixed(2)} sys ${(c.system / 1e6).toFixed(2)} => ${((c.user + c.system) / 1e3 / 30).toFixed(1)} ms/MB`);
await a.stop(); await b.stop();
