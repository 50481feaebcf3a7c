// A supernode puts agents' background chunk requests behind the origin fetches of callers who wait,
// and starts a waiting background fetch at once when a caller asks for one of its chunks; beside an
// answer a caller waits for, it sends no more than BACKGROUND_SLOTS background answers at once.
// The Debian registry behind a proxy that holds each blob GET 300 ms and counts them.
import { PRIORITY_HEADER } from "@shoal/swarm";
import { startDelayProxy, waitFor, type DelayProxy } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blobChunks, Cleanup, registryWithImage, type TestImage } from "./harness.ts";
import { BACKGROUND_SLOTS, type Supernode } from "../src/index.ts";

const cleanup = new Cleanup();
let image: TestImage;
let far: DelayProxy;
let sn: Supernode;

beforeAll(async () => {
  const { registry, image: img } = await registryWithImage(cleanup, "prio/app", 4 << 20, 64 * 1024);
  image = img;
  far = await startDelayProxy({ target: registry.host, delayMs: 300 });
  cleanup.add(() => far.stop());
  sn = await cleanup.supernode({ root: await cleanup.tempDir("shoal-sn-prio-"), accessTtlMs: 0, metricsListen: { host: "127.0.0.1", port: 0 } });
}, 120_000);
afterAll(() => cleanup.run());

/** GET chunks first..last of the image's first layer through the far registry; `background` sends the priority header. */
async function chunks(first: number, last: number, background = false): Promise<Buffer> {
  const l = image.layers[0]!;
  const res = await fetch(`${sn.url}/v1/chunks/${far.host}/${image.repository}/${l.digest}?first=${first}&last=${last}`, background ? { headers: { [PRIORITY_HEADER]: "background" } } : {});
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe("supernode: background chunk requests yield to callers who wait", () => {
  let n = 0;
  beforeAll(async () => {
    await chunks(0, 0); // the index is cached now
    n = image.layers[0]!.index.chunkCount;
    expect(n, "the test needs a layer of 30 chunks or more").toBeGreaterThanOrEqual(30);
  });
  const range = (i: number) => {
    const c = image.layers[0]!.index.chunk(i);
    return `bytes=${c.offset}-${c.offset + c.length - 1}`;
  };

  it("starts a background origin fetch only after the waiting caller's fetch is done", async () => {
    far.reset();
    const waiting = chunks(n - 1, n - 1);
    await waitFor("the caller's origin fetch", async () => (far.blobRequests === 1 ? true : undefined), 10_000);
    const background = chunks(2, 10, true);
    const [a, b] = await Promise.all([waiting, background]);
    expect(a).toEqual(blobChunks(image.layers[0]!, n - 1, n - 1));
    expect(b).toEqual(blobChunks(image.layers[0]!, 2, 10));
    expect(far.blobRequests).toBe(2);
    expect(far.maxInFlight).toBe(1);
    expect(far.ranges[0]).toBe(range(n - 1));
  });

  it("starts a waiting background fetch at once when a caller asks for one of its chunks", async () => {
    far.reset();
    const waiting = chunks(n - 2, n - 2);
    await waitFor("the caller's origin fetch", async () => (far.blobRequests === 1 ? true : undefined), 10_000);
    const background = chunks(12, 20, true);
    await new Promise((r) => setTimeout(r, 50)); // the background request is parked now
    const wanted = chunks(16, 16);
    const [, , c] = await Promise.all([waiting, background, wanted]);
    expect(c).toEqual(blobChunks(image.layers[0]!, 16, 16));
    expect(far.blobRequests).toBe(2); // the caller shares the background fetch
    expect(far.maxInFlight).toBe(2); // which started beside the first caller's
  });
  it("beside an answer a caller waits for, sends the slots' worth of background answers and holds the next back", async () => {
    const waited = async () => Number(/^shoal_supernode_background_answers_waited_total (\d+)$/m.exec(await (await fetch(`${sn.metricsUrl}/metrics`)).text())?.[1]);
    const before = await waited();
    far.reset();
    // a caller waits (its chunk comes from the far registry); the background answers park behind its origin fetch, holding their slots
    const waiting = chunks(n - 3, n - 3);
    // (looked at often: the background requests must come within the 300 ms the far registry holds it)
    for (const until = Date.now() + 10_000; far.blobRequests < 1 && Date.now() < until;) await new Promise((r) => setTimeout(r, 5));
    expect(far.blobRequests).toBe(1);
    const runs = Array.from({ length: BACKGROUND_SLOTS + 1 }, (_, k) => [22 + 2 * k, 23 + 2 * k] as const);
    const background = runs.map(([a, b]) => chunks(a, b, true));
    const [, ...got] = await Promise.all([waiting, ...background]);
    got.forEach((bytes, k) => expect(bytes).toEqual(blobChunks(image.layers[0]!, runs[k]![0], runs[k]![1])));
    expect((await waited()) - before).toBe(1);
  });
});
