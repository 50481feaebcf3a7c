// The ChunkSource conformance suite (@shoal/fetch/testsuite) against the agents' supernode source,
// talking to real supernodes in front of the Debian registry: one supernode, two that split the chunks,
// and one whose API threads (--api-threads) take the connections.
import { SupernodeSource } from "@shoal/fetch";
import { chunkSourceSuite, describeSuite } from "@shoal/fetch/testsuite";
import { SupernodeSet } from "@shoal/swarm";
import { afterAll, beforeAll, expect, it } from "vitest";
import { Cleanup, registryWithImage, type TestImage } from "./harness.ts";
import type { Supernode } from "../src/index.ts";

const cleanup = new Cleanup();
let image: TestImage;
let one: Supernode;
let pair: Supernode[];
let threaded: Supernode;

beforeAll(async () => {
  ({ image } = await registryWithImage(cleanup, "suite/app", 2 * 1024 * 1024, 64 * 1024));
  one = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-suite-") });
  pair = [await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-suite-a-") }), await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-suite-b-") })];
  threaded = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-suite-t-"), apiThreads: 2 });
}, 120_000);
afterAll(() => cleanup.run());

const subject = (urls: string[]) => {
  const l = image.layers[0]!;
  return {
    source: new SupernodeSource({ supernodes: new SupernodeSet({ urls }) }),
    layer: { digest: l.digest, registry: image.registry, repository: image.repository, index: l.index },
    blob: l.blob,
  };
};

describeSuite("ChunkSource: SupernodeSource against one supernode", chunkSourceSuite, async () => subject([one.url]));
describeSuite("ChunkSource: SupernodeSource against two supernodes splitting a run by owner", chunkSourceSuite, async () => subject(pair.map((s) => s.url)));
describeSuite("ChunkSource: SupernodeSource against a supernode whose API threads take the connections", chunkSourceSuite, async () => subject([threaded.url]));

it("SupernodeSource streams a run split between two owners: every chunk reaches onChunk before the run resolves", async () => {
  const { source, layer } = subject(pair.map((s) => s.url));
  const n = layer.index.chunkCount;
  const heard = new Set<number>();
  await source.fetchChunks(layer, 0, n - 1, { signal: AbortSignal.timeout(30_000), onChunk: (k) => heard.add(k) });
  expect([...heard].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
});
