import { gunzipSync } from "node:zlib";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { convertLayer, OCI_LAYER_TAR, type Chunk } from "@shoal/blockindex";
import { writeTar } from "@shoal/testkit";
import { Fetcher, FetchError, type ChunkCache, type ChunkOrigin, type RemoteLayer } from "../../src/fetch/fetcher.ts";
import { PrefetchJob, QUIET_MS } from "../../src/fetch/prefetcher.ts";

const logger = pino({ level: "silent" });

async function layerFixture(): Promise<{ layer: RemoteLayer; blob: Buffer; tar: Buffer }> {
  const data = Buffer.alloc(300_000);
  let x = 1;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24; // incompressible: chunks keep their size
  }
  const tar = Buffer.from(writeTar([{ path: "f", type: "file", mode: 0o644, data }]).tar);
  const out: Buffer[] = [];
  const r = await convertLayer([tar], OCI_LAYER_TAR, (b) => { out.push(b); }, { chunkSize: 65536 });
  return { layer: { digest: r.digest, registry: "r", repository: "x", index: r.index }, blob: Buffer.concat(out), tar };
}

/** Chunks in memory; compressed-only ones are inflated on their first raw read (as the chunk store does). */
function memoryCache(): ChunkCache & { map: Map<string, Buffer>; compressedOnly: Set<string>; stored: Map<string, "raw" | "compressed"> } {
  const map = new Map<string, Buffer>();
  const compressedOnly = new Set<string>();
  const stored = new Map<string, "raw" | "compressed">();
  const inflate = (d: string) => {
    if (compressedOnly.delete(d)) map.set(d, gunzipSync(map.get(d)!));
  };
  return {
    map,
    compressedOnly,
    stored,
    has: (d) => map.has(d),
    async put(d, _z, raw) {
      map.set(d, Buffer.from(raw));
      stored.set(d, "raw");
    },
    async putCompressed(d, z) {
      map.set(d, Buffer.from(z));
      compressedOnly.add(d);
      stored.set(d, "compressed");
    },
    async readRaw(d, off, len) {
      inflate(d);
      return map.get(d)?.subarray(off, off + len);
    },
    hasRaw: (d) => map.has(d) && !compressedOnly.has(d),
    async inflateStored(d) {
      inflate(d);
      return map.has(d);
    },
  };
}

function origin(blob: Buffer, opts: { delayMs?: number; corrupt?: number; hang?: boolean } = {}): ChunkOrigin & { calls: number[] } {
  const calls: number[] = [];
  let corrupt = opts.corrupt ?? 0;
  return {
    name: "origin",
    calls,
    async fetch(_l: RemoteLayer, c: Chunk, { signal }) {
      calls.push(c.index);
      if (opts.hang) await new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      const b = Buffer.from(blob.subarray(c.offset, c.offset + c.length));
      if (corrupt > 0) {
        corrupt--;
        b[10] = b[10]! ^ 0xff;
      }
      return b;
    },
  };
}

describe("Fetcher", () => {
  it("reads ranges that span chunks and serves them from the cache afterwards", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = origin(blob);
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    expect(await f.read(layer, 60_000, 100_000)).toEqual(tar.subarray(60_000, 160_000));
    const n = src.calls.length;
    expect(await f.read(layer, 70_000, 1000)).toEqual(tar.subarray(70_000, 71_000));
    expect(src.calls.length).toBe(n);
    expect(f.totals.cache!.bytes).toBe(1000);
  });

  it("fetches the missing chunks of a long read in one range request", async () => {
    const { layer, blob, tar } = await layerFixture();
    const ranges: Array<[number, number]> = [];
    const src: ChunkOrigin = {
      name: "origin",
      fetch: async () => { throw new Error("not per chunk"); },
      fetchRange: async (_l, offset, length) => {
        ranges.push([offset, length]);
        return blob.subarray(offset, offset + length);
      },
    };
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    expect(await f.read(layer, 10, 250_000)).toEqual(tar.subarray(10, 250_010));
    const last = layer.index.chunksForRange(10, 250_000)!.last;
    expect(ranges).toEqual([[0, layer.index.chunk(last).offset + layer.index.chunk(last).length]]);
  });

  it("shares one fetch among concurrent readers of a chunk", async () => {
    const { layer, blob } = await layerFixture();
    const src = origin(blob, { delayMs: 50 });
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    await Promise.all(Array.from({ length: 20 }, () => f.read(layer, 100, 10)));
    expect(src.calls).toEqual([0]);
  });

  it("fetches a chunk that fails its digest once more, then gives up with FetchError", async () => {
    const { layer, blob, tar } = await layerFixture();
    const once = new Fetcher({ cache: memoryCache(), origins: [origin(blob, { corrupt: 1 })], logger });
    expect(await once.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    const always = origin(blob, { corrupt: 99 });
    const bad = new Fetcher({ cache: memoryCache(), origins: [always], logger });
    await expect(bad.read(layer, 0, 10)).rejects.toBeInstanceOf(FetchError);
    expect(always.calls).toEqual([0, 0]);
  });

  it("hedges a slow source with the next one, and the first verified answer wins", async () => {
    const { layer, blob, tar } = await layerFixture();
    const slow = origin(blob, { hang: true });
    const fast = { ...origin(blob), name: "supernode" };
    const f = new Fetcher({ cache: memoryCache(), origins: [slow, fast], logger }, { hedgeMs: 100, timeoutMs: 10_000 });
    const t0 = Date.now();
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(f.totals.supernode?.chunks).toBe(1);
  });

  it("never hedges onto the last-resort origin; asks it only after the others failed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const slowSupernode = { ...origin(blob, { delayMs: 400 }), name: "supernode" };
    const registry = { ...origin(blob), lastResort: true };
    const f = new Fetcher({ cache: memoryCache(), origins: [slowSupernode, registry], logger }, { hedgeMs: 50 });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(registry.calls).toEqual([]);
    const failing = { ...origin(blob), name: "supernode", fetch: async () => { throw new Error("down"); } };
    const g = new Fetcher({ cache: memoryCache(), origins: [failing, registry], logger }, { hedgeMs: 50 });
    expect(await g.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(registry.calls).toEqual([0]);
  });

  it("hedges a source only when it is slow against its own average, not when it is uniformly slow", async () => {
    const { layer, blob } = await layerFixture();
    let delay = 150;
    const first = { ...origin(blob), name: "peer" };
    const firstFetch = first.fetch.bind(first);
    first.fetch = async (l, c, o) => {
      await new Promise((r) => setTimeout(r, delay));
      return firstFetch(l, c, o);
    };
    const second = { ...origin(blob, { hang: true }), name: "supernode" }; // asked only as a hedge, never answers
    const f = new Fetcher({ cache: memoryCache(), origins: [first, second], logger }, { hedgeMs: 100 });
    await f.ensure(layer, 0); // no average yet: hedged after 100 ms; the first answers at 150 ms
    expect(f.hedges).toBe(1);
    for (let i = 1; i < 4; i++) await f.ensure(layer, i); // 150 ms each: hedge delay is now 3 x 150 ms
    expect(f.hedges).toBe(1);
    delay = 800; // slow against its own record: hedged
    await f.ensure(layer, 4);
    expect(f.hedges).toBe(2);
    expect(second.calls).toEqual([0, 4]);
  });

  it("does not ask the last resort while a hedged source is still working, even after another failed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const failsLate = { ...origin(blob), name: "peer", fetch: async () => { await new Promise((r) => setTimeout(r, 150)); throw new Error("busy"); } };
    const slowSupernode = { ...origin(blob, { delayMs: 300 }), name: "supernode" };
    const registry = { ...origin(blob), lastResort: true };
    const f = new Fetcher({ cache: memoryCache(), origins: [failsLate, slowSupernode, registry], logger }, { hedgeMs: 50 });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(slowSupernode.calls).toEqual([0]);
    expect(registry.calls).toEqual([]);
    expect(f.totals.supernode?.chunks).toBe(1);
  });

  it("drops to the next source when one serves corrupt bytes, and tells it", async () => {
    const { layer, blob, tar } = await layerFixture();
    const liar = { ...origin(blob, { corrupt: 99 }), name: "peer", bad: 0, reportBad() { this.bad++; } };
    const honest = origin(blob);
    const f = new Fetcher({ cache: memoryCache(), origins: [liar, honest], logger });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(liar.bad).toBe(2);
    expect(f.totals.peer).toBeUndefined();
    expect(f.totals.origin?.chunks).toBe(1);
  });

  it("skips sources that cannot serve the layer", async () => {
    const { layer, blob } = await layerFixture();
    const none = { ...origin(blob), name: "peer", canServe: () => false };
    const f = new Fetcher({ cache: memoryCache(), origins: [none, origin(blob)], logger });
    await f.read(layer, 0, 10);
    expect(none.calls).toEqual([]);
  });

  it("bounds a hanging source by the fetch timeout", async () => {
    const { layer, blob } = await layerFixture();
    const f = new Fetcher({ cache: memoryCache(), origins: [origin(blob, { hang: true })], logger }, { timeoutMs: 200 });
    const t0 = Date.now();
    await expect(f.read(layer, 0, 10)).rejects.toThrow(/timed out after 200 ms/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe("PrefetchJob", () => {
  it("fetches the recorded startup chunks first, then every other chunk once", async () => {
    const { layer, blob } = await layerFixture();
    const src = origin(blob);
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], first: [[0, 3], [0, 1]], rateBytesPerSec: 1e9, concurrency: 1 });
    await job.done;
    expect(new Set(src.calls.slice(0, 2))).toEqual(new Set([3, 1]));
    expect([...src.calls].sort((a, b) => a - b)).toEqual(Array.from({ length: layer.index.chunkCount }, (_, i) => i));
    expect(job.progress()).toMatchObject({ finished: true, chunksDone: layer.index.chunkCount });
  });

  it("stores startup chunks inflated and the background stream compressed only, then inflates those in idle time", async () => {
    const { layer, blob, tar } = await layerFixture();
    const cache = memoryCache();
    const f = new Fetcher({ cache, origins: [origin(blob)], logger });
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], first: [[0, 2]], rateBytesPerSec: 1e9, concurrency: 1 });
    await job.done;
    const digestOf = (i: number) => `sha256:${layer.index.chunk(i).digest.toString("hex")}`;
    expect(cache.stored.get(digestOf(2))).toBe("raw");
    expect([...cache.stored.values()].filter((k) => k === "compressed")).toHaveLength(layer.index.chunkCount - 1);
    expect(cache.compressedOnly.size).toBe(0);
    expect(job.progress()).toMatchObject({ finished: true, inflated: true });
    expect(await f.read(layer, 0, tar.length)).toEqual(tar);
  });

  it("puts the idle-time inflation off while the host serves peers", async () => {
    const { layer, blob } = await layerFixture();
    const cache = memoryCache();
    const f = new Fetcher({ cache, origins: [origin(blob)], logger });
    let sharing = true;
    const job = new PrefetchJob({ fetcher: f, logger, busy: () => sharing }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 2 });
    for (let k = 0; k < 100 && !job.progress().finished; k++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    expect(job.progress()).toMatchObject({ finished: true, inflated: false });
    expect(cache.compressedOnly.size).toBe(layer.index.chunkCount);
    sharing = false;
    await job.done;
    expect(job.progress().inflated).toBe(true);
    expect(cache.compressedOnly.size).toBe(0);
  });

  it("a read inflates a chunk stored compressed only", async () => {
    const { layer, blob, tar } = await layerFixture();
    const cache = memoryCache();
    const f = new Fetcher({ cache, origins: [origin(blob)], logger });
    await f.ensureRange(layer, 0, layer.index.chunkCount - 1, { background: true });
    expect(cache.compressedOnly.size).toBe(layer.index.chunkCount);
    expect(f.hasInflated(layer, 0)).toBe(false);
    expect(await f.read(layer, 0, tar.length)).toEqual(tar);
    expect(cache.compressedOnly.size).toBe(0);
  });

  it("gives an on-demand read the bytes of a chunk a background fetch is storing compressed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = origin(blob, { delayMs: 50 });
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    const bg = f.ensureRange(layer, 0, 0, { background: true });
    expect(await f.read(layer, 5, 100)).toEqual(tar.subarray(5, 105));
    await bg;
    expect(src.calls).toEqual([0]);
  });

  it("starts the background stream at a random chunk, so agents hold different chunks early", async () => {
    const { layer, blob } = await layerFixture();
    const firsts: number[] = [];
    for (const r of [0.1, 0.6]) {
      const src = origin(blob);
      const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
      const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 1, random: () => r });
      await job.done;
      firsts.push(src.calls[0]!);
      expect(new Set(src.calls).size).toBe(layer.index.chunkCount);
    }
    expect(firsts[0]).not.toBe(firsts[1]);
  });

  it("keeps to its rate", async () => {
    const { layer, blob } = await layerFixture();
    const f = new Fetcher({ cache: memoryCache(), origins: [origin(blob)], logger });
    const bytes = layer.index.dataSize;
    expect(bytes).toBeGreaterThan(250_000);
    const rate = bytes / 0.6; // the whole layer in about 0.6 s, less the burst
    const burst = 70_000;
    const t0 = performance.now();
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: rate, burstBytes: burst, concurrency: 1 });
    await job.done;
    const sec = (performance.now() - t0) / 1000;
    expect(sec).toBeGreaterThanOrEqual(((bytes - burst) / rate) * 0.9);
    expect(sec).toBeLessThan(3);
  });

  it("waits while on-demand fetches are under way", async () => {
    const { layer, blob } = await layerFixture();
    const src = origin(blob);
    const f = new Fetcher({ cache: memoryCache(), origins: [src], logger });
    f.foreground = 1;
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9 });
    await new Promise((r) => setTimeout(r, 150));
    expect(src.calls).toEqual([]);
    f.foreground = 0;
    f.lastForegroundAt = performance.now(); // an on-demand fetch just ended: a quiet spell follows
    await new Promise((r) => setTimeout(r, QUIET_MS / 2));
    expect(src.calls).toEqual([]);
    await job.done;
    expect(src.calls.length).toBe(layer.index.chunkCount);
  });
});
