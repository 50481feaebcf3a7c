import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { convertLayer, OCI_LAYER_TAR } from "@shoal/blockindex";
import { bitmapHas, decodeChunkBitmap, encodeChunkBitmap } from "@shoal/supernode";
import { writeTar } from "@shoal/testkit";
import type { RemoteLayer } from "../../src/fetch/fetcher.ts";
import { holdings, PeerOrigin, Tracker, type ChunkPeerLike, type Holder, type PeerInfo } from "../../src/fetch/peer-origin.ts";

const logger = pino({ level: "silent" });

async function layerOf(bytes: number): Promise<RemoteLayer> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 2654435761) >>> 24;
  const tar = Buffer.from(writeTar([{ path: "f", type: "file", mode: 0o644, data }]).tar);
  const r = await convertLayer([tar], OCI_LAYER_TAR, () => {}, { chunkSize: 65536 });
  return { digest: r.digest, registry: "r", repository: "x", index: r.index };
}

/** A tracker that answers a fixed list of holders, counting the questions. */
class FixedTracker extends Tracker {
  asked = 0;
  private readonly list: Holder[];
  constructor(list: Holder[]) {
    super({ logger }, { supernodes: [] });
    this.list = list;
  }
  override async peers(): Promise<Holder[]> {
    this.asked++;
    return this.list;
  }
}

function fakePeer(): ChunkPeerLike & { asked: string[] } {
  const asked: string[] = [];
  return {
    peerId: "self", addrs: [], asked,
    async fetchChunk(p: PeerInfo) {
      asked.push(p.peerId);
      return new Uint8Array([1]);
    },
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

describe("PeerOrigin", () => {
  it("asks only peers whose bitmap holds the chunk, and none for a chunk nobody holds", async () => {
    const layer = await layerOf(400_000);
    const n = layer.index.chunkCount;
    const tracker = new FixedTracker([
      { peerId: "evens", addrs: [], bits: decodeChunkBitmap(encodeChunkBitmap(n, (i) => i % 2 === 0)) },
      { peerId: "two", addrs: [], bits: decodeChunkBitmap(encodeChunkBitmap(n, (i) => i === 2)) },
      { peerId: "self", addrs: [] },
    ]);
    const peer = fakePeer();
    const origin = new PeerOrigin({ peer, tracker, logger });
    expect(origin.canServe(layer, 0)).toBe(false); // no list yet: asks the tracker in the background
    await sleep(10);
    expect(origin.canServe(layer, 0)).toBe(true);
    expect(origin.canServe(layer, 1)).toBe(false);
    expect(origin.canServe(layer)).toBe(true);
    for (let k = 0; k < 20; k++) await origin.fetch(layer, layer.index.chunk(2), { signal: AbortSignal.timeout(1000) });
    expect(new Set(peer.asked)).toEqual(new Set(["evens", "two"]));
    peer.asked.length = 0;
    for (let k = 0; k < 10; k++) await origin.fetch(layer, layer.index.chunk(4), { signal: AbortSignal.timeout(1000) });
    expect(new Set(peer.asked)).toEqual(new Set(["evens"]));
    await expect(origin.fetch(layer, layer.index.chunk(1), { signal: AbortSignal.timeout(1000) })).rejects.toThrow(/no peer holds this chunk/);
    expect(tracker.asked).toBe(1);
  });
});
