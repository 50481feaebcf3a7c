import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { chunkDigest } from "@shoal/blockindex";
import { BACKGROUND_RUN_BYTES, DemandActivity, FAILURE_MEMORY_MS, Fetcher, FetchError, PrefetchJob, QUIET_MS, type ChunkSource, type RateLimit } from "../src/index.ts";
import { MemorySource, MemoryChunkCache } from "../testsuite/index.ts";
import { waitFor } from "@shoal/testkit";
import { layerFixture, pause } from "./helpers.ts";

const logger = pino({ level: "silent" });

/** A source that fails every request after `delayMs`. */
function failing(name: string, delayMs = 0): ChunkSource & { calls: number } {
  return {
    name,
    calls: 0,
    async fetchChunks() {
      this.calls++;
      await pause(delayMs);
      throw new FetchError(`${name} is down`);
    },
  };
}

describe("Fetcher", () => {
  it("reads ranges that span chunks and serves them from the cache afterwards", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = new MemorySource(blob);
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    expect(await f.read(layer, 60_000, 100_000)).toEqual(tar.subarray(60_000, 160_000));
    const n = src.runs.length;
    expect(await f.read(layer, 70_000, 1000)).toEqual(tar.subarray(70_000, 71_000));
    expect(src.runs.length).toBe(n);
    expect(f.stats().sources.cache!.bytes).toBe(1000);
  });

  it("fetches the missing chunks of a long read in one run", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = new MemorySource(blob);
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    expect(await f.read(layer, 10, 250_000)).toEqual(tar.subarray(10, 250_010));
    expect(src.runs).toEqual([[0, layer.index.chunksForRange(10, 250_000)!.last]]);
  });

  it("fetches a miss's whole aligned window in one request, and only the chunks read without one", async () => {
    const { layer, blob, tar } = await layerFixture(); // 64 KiB chunks
    const src = new MemorySource(blob);
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger }, { missWindowBytes: 131_072 });
    expect(f.missWindow(layer, 200_000)).toEqual({ first: 2, last: 3 });
    expect(await f.read(layer, 70_000, 100)).toEqual(tar.subarray(70_000, 70_100));
    await waitFor("chunk 0 of the window", async () => (f.has(layer, 0) ? true : undefined), 10_000);
    expect(src.runs).toEqual([[0, 1]]);
    // a chunk of the window that is local already is not fetched again; a hit fetches nothing
    await f.read(layer, 262_144, 10);
    await f.read(layer, 140_000, 10);
    await waitFor("chunk 3 of the window", async () => (f.has(layer, 3) ? true : undefined), 10_000);
    expect(src.runs).toEqual([[0, 1], [4, 4], [2, 3]]);
    await f.read(layer, 150_000, 10);
    expect(src.runs.length).toBe(3);

    const plain = new MemorySource(blob);
    const g = new Fetcher({ cache: new MemoryChunkCache(), sources: [plain], logger });
    await g.read(layer, 70_000, 100);
    expect(plain.runs).toEqual([[1, 1]]);
    expect(g.has(layer, 0)).toBe(false);
  });

  it("answers the reader of a run's first chunk as soon as that chunk arrives, not when the run ends", async () => {
    const { layer, blob, tar } = await layerFixture();
    let release!: () => void;
    const rest = new Promise<void>((r) => (release = r));
    // streams chunk 0 at once, then holds the rest of the run until released
    const src: ChunkSource = {
      name: "streaming",
      async fetchChunks(l, first, last, o) {
        const all = await new MemorySource(blob).fetchChunks(l, first, last, o);
        o.onChunk?.(0, all[0]!);
        await rest;
        return all;
      },
    };
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    const last = layer.index.chunkCount - 1;
    const whole = f.ensureRange(layer, 0, last);
    let wholeDone = false;
    void whole.then(() => (wholeDone = true));
    expect(await f.read(layer, 10, 100)).toEqual(tar.subarray(10, 110));
    expect(wholeDone).toBe(false);
    expect(f.has(layer, 0)).toBe(true);
    expect(f.has(layer, 1)).toBe(false);
    release();
    await whole;
    expect(f.has(layer, last)).toBe(true);
  });

  it("hands a chunk to its reader before the store has written it, and serves it from memory until then", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = new MemorySource(blob);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // a store whose writes wait for the gate, as a disk sync would
    const cache = new (class extends MemoryChunkCache {
      override async put(d: string, c: Uint8Array, raw: Uint8Array, o?: { verified?: boolean }): Promise<void> {
        await gate;
        return super.put(d, c, raw, o);
      }
    })();
    const f = new Fetcher({ cache, sources: [src], logger });
    expect(await f.read(layer, 100, 10)).toEqual(tar.subarray(100, 110));
    expect(cache.has(chunkDigest(layer.index.chunk(0)))).toBe(false);
    // read again while the write waits: no second fetch
    expect(await f.read(layer, 200, 10)).toEqual(tar.subarray(200, 210));
    expect(f.has(layer, 0)).toBe(true);
    expect(src.runs).toEqual([[0, 0]]);
    const drained = f.drain();
    release();
    await drained;
    expect(cache.has(chunkDigest(layer.index.chunk(0)))).toBe(true);
  });

  it("fails a read again at once right after its chunk's deadline passed, and asks the sources again after FAILURE_MEMORY_MS", async () => {
    const { layer } = await layerFixture();
    // accepts and never answers: every fetch ends at its deadline
    const down = {
      name: "hung",
      calls: 0,
      fetchChunks(_l: unknown, _f: number, _t: number, o: { signal: AbortSignal }): Promise<Uint8Array[]> {
        this.calls++;
        return new Promise((_, reject) => o.signal.addEventListener("abort", () => reject(o.signal.reason as Error), { once: true }));
      },
    };
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [down], logger }, { timeoutMs: 100 });
    await expect(f.read(layer, 100, 10)).rejects.toThrow(FetchError);
    const calls = down.calls;
    // the kernel's read after a failed readahead: no second wait
    await expect(f.read(layer, 100, 10)).rejects.toThrow(FetchError);
    expect(down.calls).toBe(calls);
    await pause(FAILURE_MEMORY_MS + 50);
    await expect(f.read(layer, 100, 10)).rejects.toThrow(FetchError);
    expect(down.calls).toBeGreaterThan(calls);
  });

  it("shares one fetch among concurrent readers of a chunk", async () => {
    const { layer, blob } = await layerFixture();
    const src = new MemorySource(blob, { delayMs: 50 });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    await Promise.all(Array.from({ length: 20 }, () => f.read(layer, 100, 10)));
    expect(src.runs).toEqual([[0, 0]]);
  });

  it("fetches a chunk that fails its digest once more, then gives up with FetchError", async () => {
    const { layer, blob, tar } = await layerFixture();
    const once = new Fetcher({ cache: new MemoryChunkCache(), sources: [new MemorySource(blob, { corrupt: 1 })], logger });
    expect(await once.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    const always = new MemorySource(blob, { corrupt: 99 });
    const bad = new Fetcher({ cache: new MemoryChunkCache(), sources: [always], logger });
    await expect(bad.read(layer, 0, 10)).rejects.toBeInstanceOf(FetchError);
    expect(always.singles).toEqual([0, 0]);
  });

  it("refetches alone, through every source, a chunk of a run that failed its digest", async () => {
    const { layer, blob, tar } = await layerFixture();
    const liar = new MemorySource(blob, { name: "peer", corrupt: 1 });
    const honest = new MemorySource(blob, { name: "supernode" });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [liar, honest], logger });
    expect(await f.read(layer, 0, 200_000)).toEqual(tar.subarray(0, 200_000));
    expect(liar.runs[0]![1]).toBeGreaterThan(0); // the run went to the first source
    expect(liar.reported).toEqual([0]); // the run's first chunk was corrupted
    expect([...liar.singles, ...honest.singles]).toEqual([0]); // and only it was asked for again, alone
    const { peer, supernode } = f.stats().sources;
    expect((peer?.chunks ?? 0) + (supernode?.chunks ?? 0)).toBe(liar.runs[0]![1] + 1);
  });

  it("hedges a slow source with the next one, and the first verified answer wins", async () => {
    const { layer, blob, tar } = await layerFixture();
    const slow = new MemorySource(blob, { name: "peer", hang: true });
    const fast = new MemorySource(blob, { name: "supernode" });
    // without the hedge the read would wait for the 60 s deadline and fail
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [slow, fast], logger }, { hedgeMs: 100, timeoutMs: 60_000 });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(f.stats()).toMatchObject({ hedges: 1, sources: { supernode: { chunks: 1 } } });
  });

  it("never hedges onto the last-resort origin; asks it only after the others failed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const slowSupernode = new MemorySource(blob, { name: "supernode", delayMs: 400 });
    const registry = new MemorySource(blob, { lastResort: true });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [slowSupernode, registry], logger }, { hedgeMs: 50 });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(registry.runs).toEqual([]);
    const g = new Fetcher({ cache: new MemoryChunkCache(), sources: [failing("supernode"), registry], logger }, { hedgeMs: 50 });
    expect(await g.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(registry.runs).toEqual([[0, 0]]);
  });

  it("hedges a source only when it is slow against its own average, not when it is uniformly slow", async () => {
    const { layer, blob } = await layerFixture();
    const first = new MemorySource(blob, { name: "peer", delayMs: 150 });
    const second = new MemorySource(blob, { name: "supernode", hang: true }); // asked only as a hedge, never answers
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [first, second], logger }, { hedgeMs: 100 });
    await f.ensure(layer, 0); // no average yet: hedged after 100 ms; the first answers at 150 ms
    expect(f.stats().hedges).toBe(1);
    for (let i = 1; i < 4; i++) await f.ensure(layer, i); // 150 ms each: the hedge delay is now 3 x 150 ms
    expect(f.stats().hedges).toBe(1);
    first.delayMs = 800; // slow against its own record: hedged
    await f.ensure(layer, 4);
    expect(f.stats().hedges).toBe(2);
    expect(second.singles).toEqual([0, 4]);
  });

  it("does not ask the last resort while a hedged source is still working, even after another failed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const slowSupernode = new MemorySource(blob, { name: "supernode", delayMs: 300 });
    const registry = new MemorySource(blob, { lastResort: true });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [failing("peer", 150), slowSupernode, registry], logger }, { hedgeMs: 50 });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(slowSupernode.singles).toEqual([0]);
    expect(registry.runs).toEqual([]);
    expect(f.stats().sources.supernode?.chunks).toBe(1);
  });

  it("drops to the next source when one serves corrupt bytes, and tells it", async () => {
    const { layer, blob, tar } = await layerFixture();
    const liar = new MemorySource(blob, { name: "peer", corrupt: 99 });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [liar, new MemorySource(blob)], logger });
    expect(await f.read(layer, 0, 10)).toEqual(tar.subarray(0, 10));
    expect(liar.reported).toEqual([0, 0]);
    expect(f.stats().sources.peer).toBeUndefined();
    expect(f.stats().sources.origin?.chunks).toBe(1);
  });

  it("skips sources that cannot serve the layer", async () => {
    const { layer, blob } = await layerFixture();
    const none = Object.assign(new MemorySource(blob, { name: "peer" }), { canServe: () => false });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [none, new MemorySource(blob)], logger });
    await f.read(layer, 0, 10);
    expect(none.runs).toEqual([]);
  });

  it("bounds a hanging source by the fetch timeout", async () => {
    const { layer, blob } = await layerFixture();
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [new MemorySource(blob, { hang: true })], logger }, { timeoutMs: 200 });
    await expect(f.read(layer, 0, 10)).rejects.toThrow(/timed out after 200 ms/);
  });

  it("fails a run that outlives the deadline with FetchError, as a single chunk does", async () => {
    const { layer, blob } = await layerFixture();
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [new MemorySource(blob, { hang: true })], logger }, { timeoutMs: 200 });
    const err = await f.read(layer, 0, 200_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toMatch(/timed out after 200 ms/);
  });

  it("passes the caller's abort to the source once no other reader waits for the chunk", async () => {
    const { layer, blob, tar } = await layerFixture();
    const reasons: unknown[] = [];
    const src = new MemorySource(blob, { delayMs: 300 });
    const fetchChunks = src.fetchChunks.bind(src);
    src.fetchChunks = (l, a, b, o) => {
      o.signal.addEventListener("abort", () => reasons.push(o.signal.reason), { once: true });
      return fetchChunks(l, a, b, o);
    };
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger }, { timeoutMs: 60_000 });
    // two readers, one gives up: the fetch goes on for the other
    const quitter = new AbortController();
    const gone = f.read(layer, 0, 10, { signal: quitter.signal });
    const stays = f.read(layer, 0, 10);
    quitter.abort(new Error("reader interrupted"));
    await expect(gone).rejects.toThrow("reader interrupted");
    expect(await stays).toEqual(tar.subarray(0, 10));
    expect(reasons).toEqual([]);
    // the only reader gives up: the source is told
    const alone = new AbortController();
    const p = f.read(layer, 70_000, 10, { signal: alone.signal });
    await pause(20);
    alone.abort(new Error("killed"));
    await expect(p).rejects.toThrow("killed");
    await pause(20);
    expect(reasons).toHaveLength(1);
  });

  it("marks on-demand fetches as demand, and background ones not", async () => {
    const { layer, blob } = await layerFixture();
    let now = 0;
    const demand = new DemandActivity({ now: () => now });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [new MemorySource(blob)], logger, demand });
    await f.ensureRange(layer, 0, 1, { background: true });
    expect(demand.busy(QUIET_MS)).toBe(false);
    await f.read(layer, 200_000, 10);
    expect(demand.busy(QUIET_MS)).toBe(true);
    now += QUIET_MS;
    expect(demand.busy(QUIET_MS)).toBe(false);
  });
});

/** A rate limit the test opens by hand: `take` waits until the bytes granted cover it. */
function gate(): RateLimit & { grant(n: number): void; taken: number } {
  let granted = 0;
  const waiting: Array<() => void> = [];
  const g = {
    taken: 0,
    grant(n: number) {
      granted += n;
      for (const w of waiting.splice(0)) w();
    },
    async take(n: number, opts: { signal?: AbortSignal }) {
      while (g.taken + n > granted) {
        await new Promise<void>((resolve) => waiting.push(resolve));
        opts.signal?.throwIfAborted();
      }
      g.taken += n;
    },
  };
  return g;
}

describe("PrefetchJob", () => {
  it("fetches the recorded startup chunks first, then every other chunk once", async () => {
    const { layer, blob } = await layerFixture();
    const src = new MemorySource(blob);
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], first: [[0, 3], [0, 1]], rateBytesPerSec: 1e9, concurrency: 1 });
    await job.done;
    const chunks = src.runs.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, k) => a + k));
    expect(new Set(chunks.slice(0, 2))).toEqual(new Set([3, 1]));
    expect([...chunks].sort((a, b) => a - b)).toEqual(Array.from({ length: layer.index.chunkCount }, (_, i) => i));
    expect(job.progress()).toMatchObject({ finished: true, chunksDone: layer.index.chunkCount });
  });

  it("says where each layer's part of the stream began", async () => {
    const { layer, blob } = await layerFixture();
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [new MemorySource(blob)], logger });
    const n = layer.index.chunkCount;
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 1, random: () => 0.5 });
    await job.done;
    expect(job.progress().layers).toEqual([{ chunks: n, from: Math.floor(n / 2) }]);
  });

  it("retries every chunk of a background run that failed, not only its first", async () => {
    const { layer, blob } = await layerFixture();
    const src = new MemorySource(blob);
    // the first run fails, and so does each of its chunks asked alone after it
    let refusals = layer.index.chunkCount + 1;
    const flaky: ChunkSource = { name: "flaky", fetchChunks: (l, a, b, o) => (refusals-- > 0 ? Promise.reject(new FetchError("flaky is down")) : src.fetchChunks(l, a, b, o)) };
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [flaky], logger });
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 1, spread: false });
    await job.done;
    expect(layer.index.chunkCount).toBeGreaterThan(2);
    expect(job.progress()).toMatchObject({ finished: true, failures: 1, chunksDone: layer.index.chunkCount });
  });

  it("stores startup chunks inflated and the background stream compressed only, then inflates those in idle time", async () => {
    const { layer, blob, tar } = await layerFixture();
    const cache = new MemoryChunkCache();
    const f = new Fetcher({ cache, sources: [new MemorySource(blob)], logger });
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], first: [[0, 2]], rateBytesPerSec: 1e9, concurrency: 1 });
    await job.done;
    expect(cache.stored.get(chunkDigest(layer.index.chunk(2)))).toBe("raw");
    expect([...cache.stored.values()].filter((k) => k === "compressed")).toHaveLength(layer.index.chunkCount - 1);
    expect(cache.compressedOnly.size).toBe(0);
    expect(job.progress()).toMatchObject({ finished: true, inflated: true });
    expect(await f.read(layer, 0, tar.length)).toEqual(tar);
  });

  it("puts the idle-time inflation off while the host serves peers", async () => {
    const { layer, blob } = await layerFixture();
    const cache = new MemoryChunkCache();
    const f = new Fetcher({ cache, sources: [new MemorySource(blob)], logger });
    let sharing = true;
    const job = new PrefetchJob({ fetcher: f, logger, busy: () => sharing }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 2 });
    for (let k = 0; k < 100 && !job.progress().finished; k++) await pause(20);
    await pause(300);
    expect(job.progress()).toMatchObject({ finished: true, inflated: false });
    expect(cache.compressedOnly.size).toBe(layer.index.chunkCount);
    sharing = false;
    await job.done;
    expect(job.progress().inflated).toBe(true);
    expect(cache.compressedOnly.size).toBe(0);
  });

  it("a read inflates a chunk stored compressed only", async () => {
    const { layer, blob, tar } = await layerFixture();
    const cache = new MemoryChunkCache();
    const f = new Fetcher({ cache, sources: [new MemorySource(blob)], logger });
    await f.ensureRange(layer, 0, layer.index.chunkCount - 1, { background: true });
    expect(cache.compressedOnly.size).toBe(layer.index.chunkCount);
    expect(f.hasInflated(layer, 0)).toBe(false);
    expect(await f.read(layer, 0, tar.length)).toEqual(tar);
    expect(cache.compressedOnly.size).toBe(0);
  });

  it("gives an on-demand read the bytes of a chunk a background fetch is storing compressed", async () => {
    const { layer, blob, tar } = await layerFixture();
    const src = new MemorySource(blob, { delayMs: 50 });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    const bg = f.ensureRange(layer, 0, 0, { background: true });
    expect(await f.read(layer, 5, 100)).toEqual(tar.subarray(5, 105));
    await bg;
    expect(src.runs).toEqual([[0, 0]]);
  });

  it("starts the background stream at a random chunk, so agents hold different chunks early", async () => {
    const { layer, blob } = await layerFixture();
    const firsts: number[] = [];
    for (const r of [0.1, 0.6]) {
      const src = new MemorySource(blob);
      const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
      const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9, concurrency: 1, random: () => r });
      await job.done;
      firsts.push(src.runs[0]![0]);
    }
    expect(firsts[0]).not.toBe(firsts[1]);
  });

  it("pays its rate limit for every byte before fetching it", async () => {
    const { layer, blob } = await layerFixture(2_000_000);
    const src = new MemorySource(blob);
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    const limiter = gate();
    const fetched = () => src.runs.reduce((n, [a, b]) => n + layer.index.chunk(b).offset + layer.index.chunk(b).length - layer.index.chunk(a).offset, 0);
    const job = new PrefetchJob({ fetcher: f, logger, limiter }, { layers: [layer], rateBytesPerSec: 1, concurrency: 2 });
    await pause(50);
    expect(src.runs).toEqual([]);
    const some = BACKGROUND_RUN_BYTES; // one run's worth
    limiter.grant(some);
    await pause(50);
    expect(fetched()).toBeGreaterThan(0);
    expect(fetched()).toBeLessThanOrEqual(some);
    limiter.grant(blob.length);
    await job.done;
    expect(limiter.taken).toBe(fetched());
    expect(job.progress().chunksDone).toBe(layer.index.chunkCount);
  });

  it("waits while on-demand fetches are under way, and for a quiet spell after", async () => {
    const { layer, blob } = await layerFixture();
    const src = new MemorySource(blob);
    let now = 0;
    const demand = new DemandActivity({ now: () => now });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger, demand });
    const end = demand.begin();
    const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9 });
    await pause(150);
    expect(src.runs).toEqual([]);
    end(); // an on-demand fetch just ended: a quiet spell follows
    await pause(150);
    expect(src.runs).toEqual([]);
    now += QUIET_MS;
    await job.done;
    expect(job.progress().chunksDone).toBe(layer.index.chunkCount);
  });

  it("tells sources which fetches are background: the stream's, not a reader's nor the startup chunks'", async () => {
    const { layer, blob } = await layerFixture();
    const src = new MemorySource(blob);
    const seen: Array<[number, boolean]> = [];
    const fetchChunks = src.fetchChunks.bind(src);
    src.fetchChunks = (l, a, b, o) => {
      seen.push([a, o.background === true]);
      return fetchChunks(l, a, b, o);
    };
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger });
    await f.read(layer, 0, 10);
    await f.ensureRange(layer, 1, 1, { background: true, startup: true });
    await f.ensureRange(layer, 2, 2, { background: true });
    expect(seen).toEqual([[0, false], [1, false], [2, true]]);
  });

  it("counts a reader served from the store as activity, and past MAX_YIELD_MS goes on one run at a time", async () => {
    const { layer, blob } = await layerFixture(1_000_000);
    const src = new MemorySource(blob);
    let now = 0;
    const demand = new DemandActivity({ now: () => now });
    const f = new Fetcher({ cache: new MemoryChunkCache(), sources: [src], logger, demand });
    await f.ensure(layer, 0); // local now: reads of it are hits
    const fetchedBefore = src.runs.length;
    now += QUIET_MS;
    // a container reading its store all the time
    await f.read(layer, 0, 10);
    const reader = setInterval(() => void f.read(layer, 0, 10), 5);
    let inFlight = 0;
    let most = 0;
    const fetchChunks = src.fetchChunks.bind(src);
    src.fetchChunks = async (l, a, b, o) => {
      most = Math.max(most, ++inFlight);
      try {
        await pause(20);
        return await fetchChunks(l, a, b, o);
      } finally {
        inFlight--;
      }
    };
    try {
      const job = new PrefetchJob({ fetcher: f, logger }, { layers: [layer], rateBytesPerSec: 1e9, spread: false });
      await pause(300);
      expect(src.runs.slice(fetchedBefore)).toEqual([]); // yielding to the reads
      // real time passes MAX_YIELD_MS: the stream goes on beside them, one run at a time
      await waitFor("the stream to finish", async () => (job.progress().finished ? true : undefined), 20_000);
      expect(job.progress().chunksDone).toBe(layer.index.chunkCount);
      expect(most).toBe(1);
      job.stop();
    } finally {
      clearInterval(reader);
    }
  });
});
