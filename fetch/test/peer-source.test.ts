import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { describe, expect, it, vi } from "vitest";
import { ShoalError } from "@shoal/base";
import { chunkDigest, convertLayer, OCI_LAYER_TAR } from "@shoal/blockindex";
import { bitmapHas, decodeChunkBitmap, encodeChunkBitmap, type Holder, type PeerInfo } from "@shoal/swarm";
import { writeTar } from "@shoal/testkit";
import { holdings, PeerSource, planPeerRun, UNREACHABLE_SET_ASIDE_MS, type ChunkPeerLike, type PeerDirectory, type RemoteLayer } from "../src/index.ts";

const logger = pino({ level: "silent" });

async function layerWithBlob(bytes: number): Promise<{ layer: RemoteLayer; blob: Buffer }> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 2654435761) >>> 24;
  const tar = Buffer.from(writeTar([{ path: "f", type: "file", mode: 0o644, data }]).tar);
  const out: Buffer[] = [];
  const r = await convertLayer([tar], OCI_LAYER_TAR, (b) => { out.push(Buffer.from(b)); }, { chunkSize: 65536 });
  return { layer: { digest: r.digest, registry: "r", repository: "x", index: r.index }, blob: Buffer.concat(out) };
}

async function layerOf(bytes: number): Promise<RemoteLayer> {
  return (await layerWithBlob(bytes)).layer;
}

/** A tracker that answers a fixed list of holders, counting the questions. */
class FixedTracker implements PeerDirectory {
  asked = 0;
  readonly reports: string[] = [];
  private readonly list: Holder[];
  constructor(list: Holder[]) {
    this.list = list;
  }
  async peers(): Promise<Holder[]> {
    this.asked++;
    return this.list;
  }
  async report(peerId: string): Promise<void> {
    this.reports.push(peerId);
  }
}

/** A libp2p peer stand-in: records whom it asked; serves `blob`'s chunk bytes by digest. */
function fakePeer(layer?: RemoteLayer, blob?: Buffer): ChunkPeerLike & { asked: string[]; requests: Array<{ peer: string; count: number }> } {
  const asked: string[] = [];
  const requests: Array<{ peer: string; count: number }> = [];
  const bytesOf = (digest: string) => {
    if (!layer || !blob) return new Uint8Array([1]);
    for (let i = 0; i < layer.index.chunkCount; i++) {
      const c = layer.index.chunk(i);
      if (chunkDigest(c) === digest) return blob.subarray(c.offset, c.offset + c.length);
    }
    return undefined;
  };
  return {
    peerId: "self", addrs: [], maxChunksPerRequest: 32, asked, requests,
    async fetchChunk(p: PeerInfo, digest: string) {
      asked.push(p.peerId);
      return bytesOf(digest)!;
    },
    async fetchChunks(p: PeerInfo, digests: string[]) {
      requests.push({ peer: p.peerId, count: digests.length });
      return digests.map(bytesOf);
    },
  };
}

/** A bitmap of `n` chunks holding those `f` says. */
const bitsOf = (n: number, f: (i: number) => boolean) => decodeChunkBitmap(encodeChunkBitmap(n, f));

/** The compressed bytes of chunk `i` of `layer` in `blob`. */
const chunkBytesOf = (layer: RemoteLayer, blob: Buffer, i: number) => blob.subarray(layer.index.chunk(i).offset, layer.index.chunk(i).offset + layer.index.chunk(i).length);

/** `peer` answers runs asked of `peerId` with `err` (counting the request), every other peer as before. */
function failFor(peer: ReturnType<typeof fakePeer>, peerId: string, err: ShoalError): void {
  const serve = peer.fetchChunks.bind(peer);
  peer.fetchChunks = async (p, digests, opts) => {
    if (p.peerId !== peerId) return serve(p, digests, opts);
    peer.requests.push({ peer: p.peerId, count: digests.length });
    throw err;
  };
}

describe("holdings (what an agent announces)", () => {
  it("announces whole layers without a bitmap, partial ones with one, and skips layers it holds nothing of", async () => {
    const [a, b, c] = await Promise.all([layerOf(200_000), layerOf(300_000), layerOf(100_000)]);
    const held = new Map<string, (i: number) => boolean>([[a!.digest, () => true], [b!.digest, (i) => i === 1 || i === 3], [c!.digest, () => false]]);
    const out = holdings([a!, b!, c!], (l, i) => held.get(l.digest)!(i));
    expect(out.map((h) => h.digest)).toEqual([a!.digest, b!.digest]);
    expect(out[0]!.chunks).toBeUndefined();
    const bits = decodeChunkBitmap(out[1]!.chunks!);
    expect(Array.from({ length: b!.index.chunkCount }, (_, i) => bitmapHas(bits, i))).toEqual(Array.from({ length: b!.index.chunkCount }, (_, i) => i === 1 || i === 3));
  });
});

describe("PeerSource", () => {
  it("asks only peers whose bitmap holds the chunk, and none for a chunk nobody holds", async () => {
    const layer = await layerOf(400_000);
    const n = layer.index.chunkCount;
    const tracker = new FixedTracker([
      { peerId: "evens", addrs: [], bits: decodeChunkBitmap(encodeChunkBitmap(n, (i) => i % 2 === 0)) },
      { peerId: "two", addrs: [], bits: decodeChunkBitmap(encodeChunkBitmap(n, (i) => i === 2)) },
      { peerId: "self", addrs: [] },
    ]);
    const peer = fakePeer();
    const origin = new PeerSource({ peer, tracker, logger });
    expect(origin.canServe(layer, 0)).toBe(false); // no list yet: asks the tracker in the background
    await sleep(10);
    expect(origin.canServe(layer, 0)).toBe(true);
    expect(origin.canServe(layer, 1)).toBe(false);
    expect(origin.canServe(layer)).toBe(true);
    for (let k = 0; k < 20; k++) await origin.fetchChunks(layer, 2, 2, { signal: AbortSignal.timeout(1000) });
    expect(new Set(peer.asked)).toEqual(new Set(["evens", "two"]));
    peer.asked.length = 0;
    for (let k = 0; k < 10; k++) await origin.fetchChunks(layer, 4, 4, { signal: AbortSignal.timeout(1000) });
    expect(new Set(peer.asked)).toEqual(new Set(["evens"]));
    await expect(origin.fetchChunks(layer, 1, 1, { signal: AbortSignal.timeout(1000) })).rejects.toThrow(/no peer holds chunk 1 of/);
    expect(tracker.asked).toBe(1);
  });

  it("fetches a run from one peer holding all of it in one request, else one request per holder", async () => {
    const { layer, blob } = await layerWithBlob(600_000);
    const n = layer.index.chunkCount;
    const pieces = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => Buffer.from(chunkBytesOf(layer, blob, a + k)));
    const peer = fakePeer(layer, blob);
    const origin = new PeerSource({ peer, tracker: new FixedTracker([
      { peerId: "low", addrs: [], bits: bitsOf(n, (i) => i < 4) },
      { peerId: "high", addrs: [], bits: bitsOf(n, (i) => i >= 4) },
    ]), logger });
    origin.canServe(layer, 0);
    await sleep(10);
    expect((await origin.fetchChunks(layer, 0, 3, { signal: AbortSignal.timeout(1000) })).map((b) => Buffer.from(b))).toEqual(pieces(0, 3));
    expect(peer.requests).toEqual([{ peer: "low", count: 4 }]);
    peer.requests.length = 0;
    expect((await origin.fetchChunks(layer, 2, 6, { signal: AbortSignal.timeout(1000) })).map((b) => Buffer.from(b))).toEqual(pieces(2, 6));
    expect(peer.requests.sort((a, b) => a.peer.localeCompare(b.peer))).toEqual([{ peer: "high", count: 3 }, { peer: "low", count: 2 }]);
    expect(await origin.fetchChunks(layer, 0, n - 1, { signal: AbortSignal.timeout(1000) })).toHaveLength(n);
  });

  it("keeps what the other holders of a run sent when one is busy: their chunks stream, then the run fails", async () => {
    const { layer, blob } = await layerWithBlob(600_000);
    const n = layer.index.chunkCount;
    const peer = fakePeer(layer, blob);
    failFor(peer, "busy", new ShoalError("SHOAL_ERR_PEER_BUSY", "peer busy is busy"));
    const origin = new PeerSource({ peer, tracker: new FixedTracker([
      { peerId: "low", addrs: [], bits: bitsOf(n, (i) => i < 4) },
      { peerId: "busy", addrs: [], bits: bitsOf(n, (i) => i >= 4) },
    ]), logger });
    origin.canServe(layer, 0);
    await sleep(10);
    const heard = new Map<number, Buffer>();
    await expect(origin.fetchChunks(layer, 2, 6, { signal: AbortSignal.timeout(1000), onChunk: (k, bytes) => heard.set(k, Buffer.from(bytes)) })).rejects.toThrow(/busy/);
    expect([...heard.keys()].sort()).toEqual([0, 1]);
    expect(heard.get(0)).toEqual(chunkBytesOf(layer, blob, 2));
    expect(heard.get(1)).toEqual(chunkBytesOf(layer, blob, 3));
  });

  it("leaves a peer it could not reach out of the holders for UNREACHABLE_SET_ASIDE_MS, then asks it again", async () => {
    const { layer, blob } = await layerWithBlob(600_000);
    const peer = fakePeer(layer, blob);
    failFor(peer, "down", new ShoalError("SHOAL_ERR_PEER_UNAVAILABLE", "peer down: dial failed: The operation was aborted due to timeout"));
    let now = Date.now();
    vi.spyOn(Date, "now").mockImplementation(() => now);
    try {
      const origin = new PeerSource({ peer, tracker: new FixedTracker([{ peerId: "down", addrs: [] }, { peerId: "up", addrs: [] }]), logger });
      origin.canServe(layer, 0);
      await sleep(10);
      const runs = async (k: number) => {
        for (let i = 0; i < k; i++) await origin.fetchChunks(layer, 0, 2, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
      };
      await runs(30); // each run goes to one holder at random: "down" once, then never while set aside
      expect(peer.requests.filter((r) => r.peer === "down")).toHaveLength(1);
      expect(peer.requests.filter((r) => r.peer === "up").length).toBeGreaterThanOrEqual(28);
      now += UNREACHABLE_SET_ASIDE_MS + 1;
      origin.canServe(layer, 0); // the list is old by now: asked again
      await sleep(10);
      await runs(30);
      expect(peer.requests.filter((r) => r.peer === "down")).toHaveLength(2);
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe("planPeerRun", () => {
  const holder = (peerId: string, held: number[]): Holder => ({ peerId, addrs: [], bits: decodeChunkBitmap(encodeChunkBitmap(8, (i) => held.includes(i))) });
  it("asks one holder of the whole run when there is one", () => {
    const all = holder("all", [0, 1, 2]);
    const plan = planPeerRun([holder("part", [0]), all], [0, 1, 2], () => 0);
    expect(plan).toEqual(new Map([[all, [0, 1, 2]]]));
  });

  it("else splits the run among holders of each chunk, and names a chunk nobody holds", () => {
    const a = holder("a", [0, 2]);
    const b = holder("b", [1]);
    expect(planPeerRun([a, b], [0, 1, 2], () => 0)).toEqual(new Map([[a, [0, 2]], [b, [1]]]));
    expect(planPeerRun([a, b], [1, 2, 3], () => 0)).toBe(3);
  });
});
