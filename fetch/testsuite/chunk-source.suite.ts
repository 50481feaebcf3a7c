/** The `ChunkSource` contract (see `fetch/src/chunk-source.ts`), as checks. */
import { ShoalError } from "@shoal/base";
import type { ChunkSource, RemoteLayer } from "../src/index.ts";
import { assert, type Check } from "./suite.ts";

/** A source under test, with a layer it can serve and that layer's blob (the bytes it must answer). */
export interface ChunkSourceSubject {
  source: ChunkSource;
  layer: RemoteLayer;
  blob: Uint8Array;
}

const signal = () => new AbortController().signal;

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

async function expectRun({ source, layer, blob }: ChunkSourceSubject, first: number, last: number): Promise<void> {
  const got = await source.fetchChunks(layer, first, last, { signal: signal() });
  assert(Array.isArray(got) && got.length === last - first + 1, `fetchChunks(${first}, ${last}) answered ${Array.isArray(got) ? got.length : typeof got} buffers, not ${last - first + 1}`);
  got.forEach((bytes, k) => {
    const c = layer.index.chunk(first + k);
    assert(same(bytes, blob.subarray(c.offset, c.offset + c.length)), `chunk ${first + k} is not the blob's bytes [${c.offset}, ${c.offset + c.length})`);
  });
}

async function expectRejects(p: () => Promise<unknown>, check: (err: unknown) => boolean, what: string): Promise<void> {
  let err: unknown;
  try {
    await p();
  } catch (e) {
    err = e;
  }
  assert(err !== undefined, `${what}: resolved`);
  assert(check(err), `${what}: rejected with ${String(err)}`);
}

/** Every check of the ChunkSource contract. Subjects need a layer of at least three chunks. */
export const chunkSourceSuite: readonly Check<ChunkSourceSubject>[] = [
  {
    name: "serves one chunk as one buffer of its bytes, first and last of the layer too",
    async run(s) {
      const n = s.layer.index.chunkCount;
      assert(n >= 3, "the subject's layer needs at least three chunks");
      await expectRun(s, 0, 0);
      await expectRun(s, n - 1, n - 1);
    },
  },
  {
    name: "serves a run as one buffer per chunk, in order, up to the layer's end",
    async run(s) {
      const n = s.layer.index.chunkCount;
      await expectRun(s, 1, n - 1);
      await expectRun(s, 0, n - 1);
    },
  },
  {
    name: "hands streamed chunks to onChunk before it resolves, each the chunk's bytes (sources that stream)",
    async run({ source, layer, blob }) {
      const n = layer.index.chunkCount;
      const heard = new Map<number, Uint8Array>();
      let resolved = false;
      const got = await source.fetchChunks(layer, 0, n - 1, {
        signal: signal(),
        onChunk: (k, bytes) => {
          assert(!resolved, `onChunk(${k}) after fetchChunks resolved`);
          assert(Number.isInteger(k) && k >= 0 && k < n, `onChunk(${k}) is not a position of the run`);
          heard.set(k, Uint8Array.from(bytes));
        },
      });
      resolved = true;
      for (const [k, bytes] of heard) {
        const c = layer.index.chunk(k);
        assert(same(bytes, blob.subarray(c.offset, c.offset + c.length)), `onChunk(${k}) heard other bytes than chunk ${k}'s`);
        assert(same(bytes, got[k]!), `onChunk(${k}) heard other bytes than the run resolved with`);
      }
    },
  },
  {
    name: "refuses runs outside the index with InvalidArgumentError",
    async run({ source, layer }) {
      const n = layer.index.chunkCount;
      for (const [a, b] of [[-1, 0], [2, 1], [0, n], [n, n], [0.5, 1]] as const) {
        await expectRejects(() => source.fetchChunks(layer, a, b, { signal: signal() }), (e) => e instanceof ShoalError && e.code === "SHOAL_ERR_INVALID_ARGUMENT", `fetchChunks(${a}, ${b})`);
      }
    },
  },
  {
    name: "rejects with the signal's reason when aborted",
    async run({ source, layer }) {
      const reason = new Error("caller gave up");
      const ac = new AbortController();
      ac.abort(reason);
      await expectRejects(() => source.fetchChunks(layer, 0, 1, { signal: ac.signal }), (e) => e === reason, "an aborted fetchChunks");
    },
  },
  {
    name: "answers canServe from memory, as a boolean",
    async run({ source, layer }) {
      if (!source.canServe) return;
      for (const v of [source.canServe(layer), source.canServe(layer, 0)]) assert(typeof v === "boolean", `canServe answered ${typeof v}`);
    },
  },
];
