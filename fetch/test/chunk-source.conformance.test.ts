// The ChunkSource conformance suite, run against every implementation and every fake:
// the origin registry (the Debian docker-registry), peers (two real libp2p chunk peers)
// and the test fake. The supernodes' source runs it against a real supernode in
// supernode/test/source-conformance.test.ts.
import { chunkDigest } from "@shoal/blockindex";
import { RegistryClientPool } from "@shoal/oci";
import { ChunkPeer, generateSwarmKey } from "@shoal/p2p";
import type { Holder } from "@shoal/swarm";
import { startRegistry, type RunningRegistry } from "@shoal/testkit";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PeerSource, RegistrySource, checkRun, type ChunkSource, type RemoteLayer } from "../src/index.ts";
import { MemorySource, chunkSourceSuite, describeSuite, failedChecks, type ChunkSourceSubject } from "../testsuite/index.ts";
import { layerFixture } from "./helpers.ts";

const logger = pino({ level: "silent" });
let fixture: Awaited<ReturnType<typeof layerFixture>>;
let registry: RunningRegistry;
let clients: RegistryClientPool;
const peers: ChunkPeer[] = [];

beforeAll(async () => {
  fixture = await layerFixture(400_000);
  registry = await startRegistry();
  clients = new RegistryClientPool({}, { plainHttp: true });
  await clients.client(registry.host).pushBlob("suite/layer", fixture.layer.digest, fixture.blob.length, fixture.blob);
}, 60_000);

afterAll(async () => {
  for (const p of peers) await p.stop();
  await clients?.close();
  await registry?.stop();
});

const subject = (source: ChunkSource, layer: RemoteLayer = fixture.layer): ChunkSourceSubject => ({ source, layer, blob: fixture.blob });

describeSuite("ChunkSource: MemorySource (the fetcher tests' fake)", chunkSourceSuite, async () => subject(new MemorySource(fixture.blob)));

describeSuite("ChunkSource: RegistrySource against the Debian registry", chunkSourceSuite, async () =>
  subject(new RegistrySource({ clients }), { ...fixture.layer, registry: registry.host, repository: "suite/layer" }));

describe("RegistrySource", () => {
  it("streams a run: every chunk reaches onChunk, in order, before the run resolves", async () => {
    const source = new RegistrySource({ clients });
    const layer = { ...fixture.layer, registry: registry.host, repository: "suite/layer" };
    const n = layer.index.chunkCount;
    const heard: number[] = [];
    await source.fetchChunks(layer, 0, n - 1, { signal: AbortSignal.timeout(10_000), onChunk: (k) => heard.push(k) });
    expect(heard).toEqual([...Array(n).keys()]);
  });
});

describeSuite("ChunkSource: PeerSource over two libp2p chunk peers", chunkSourceSuite, async () => {
  const swarmKey = generateSwarmKey();
  const chunks = new Map<string, Uint8Array>();
  for (let i = 0; i < fixture.layer.index.chunkCount; i++) {
    const c = fixture.layer.index.chunk(i);
    chunks.set(chunkDigest(c), fixture.blob.subarray(c.offset, c.offset + c.length));
  }
  const holder = new ChunkPeer({ provider: { readCompressed: async (d) => chunks.get(d) } }, { swarmKey });
  const asker = new ChunkPeer({ provider: { readCompressed: async () => undefined } }, { swarmKey });
  peers.push(holder, asker);
  await holder.start();
  await asker.start();
  const list: Holder[] = [{ peerId: holder.peerId, addrs: holder.addrs }];
  const source = new PeerSource({ peer: asker, tracker: { peers: async () => list, report: async () => {} }, logger });
  source.canServe(fixture.layer); // the first question starts the tracker lookup
  await new Promise((r) => setTimeout(r, 20));
  return subject(source);
});

describe("the ChunkSource suite", () => {
  it("fails a source that breaks the contract", async () => {
    /** Answers a run as one buffer of the run's bytes (as range requests once did), and checks no bounds. */
    const rounding: ChunkSource = {
      name: "rounding",
      async fetchChunks(layer, first, last) {
        const a = layer.index.chunk(first);
        const b = layer.index.chunk(Math.min(last, layer.index.chunkCount - 1));
        return [fixture.blob.subarray(a.offset, b.offset + b.length)];
      },
    };
    const failed = await failedChecks(chunkSourceSuite, async () => subject(rounding));
    expect(failed).toEqual([
      "serves a run as one buffer per chunk, in order, up to the layer's end",
      "refuses runs outside the index with InvalidArgumentError",
      "rejects with the signal's reason when aborted",
    ]);
    // the same source, with the helpers every implementation uses, passes
    const fixed: ChunkSource = { name: "fixed", fetchChunks: (l, a, b, o) => (checkRun(l, a, b), o.signal.throwIfAborted(), new MemorySource(fixture.blob).fetchChunks(l, a, b, o)) };
    expect(await failedChecks(chunkSourceSuite, async () => subject(fixed))).toEqual([]);
  });
});
