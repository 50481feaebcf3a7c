import { describe, expect, it } from "vitest";
import { HotChunks, type CompressedChunkStore } from "../src/index.ts";

/** A store in a map that counts its reads, and refuses bytes that are not what the digest names. */
function countingStore(): CompressedChunkStore & { reads: number; chunks: Map<string, Buffer> } {
  const chunks = new Map<string, Buffer>();
  return {
    chunks,
    reads: 0,
    has: (d) => chunks.has(d),
    async putCompressed(d, bytes) {
      if (!d.startsWith("good")) throw new Error("digest mismatch");
      chunks.set(d, Buffer.from(bytes));
    },
    async readCompressed(d) {
      this.reads++;
      return chunks.get(d);
    },
  };
}

const chunk = (fill: number, size = 1000) => Buffer.alloc(size, fill);

describe("HotChunks", () => {
  it("answers a chunk it read lately from memory, not from the store", async () => {
    const store = countingStore();
    store.chunks.set("good-a", chunk(1));
    let hits = 0;
    const hot = new HotChunks({ store, observer: { hotHit: () => hits++ } }, { maxBytes: 1 << 20 });
    expect((await hot.readCompressed("good-a"))!.equals(chunk(1))).toBe(true);
    expect((await hot.readCompressed("good-a"))!.equals(chunk(1))).toBe(true);
    expect(store.reads).toBe(1);
    expect(hits).toBe(1);
    expect(await hot.readCompressed("good-missing")).toBeUndefined();
  });

  it("keeps a chunk it stored, and still has it after the store dropped it", async () => {
    const store = countingStore();
    const hot = new HotChunks({ store }, { maxBytes: 1 << 20 });
    await hot.putCompressed("good-b", chunk(2), 4000, { verified: true });
    store.chunks.delete("good-b");
    expect(hot.has("good-b")).toBe(true);
    expect((await hot.readCompressed("good-b"))!.equals(chunk(2))).toBe(true);
    expect(store.reads).toBe(0);
  });

  it("keeps nothing the store refused", async () => {
    const store = countingStore();
    const hot = new HotChunks({ store }, { maxBytes: 1 << 20 });
    await expect(hot.putCompressed("bad-c", chunk(3), 4000)).rejects.toThrow(/mismatch/);
    expect(hot.has("bad-c")).toBe(false);
    expect(await hot.readCompressed("bad-c")).toBeUndefined();
  });

  it("holds at most its bytes, the least recently read going first", async () => {
    const store = countingStore();
    for (const k of [1, 2, 3]) store.chunks.set(`good-${k}`, Buffer.from(new ArrayBuffer(1000)));
    const hot = new HotChunks({ store }, { maxBytes: 2000 });
    await hot.readCompressed("good-1");
    await hot.readCompressed("good-2");
    await hot.readCompressed("good-1"); // 2 is now the least recently read
    await hot.readCompressed("good-3");
    expect(hot.stats()).toEqual({ chunks: 2, bytes: 2000 });
    store.reads = 0;
    await hot.readCompressed("good-1");
    await hot.readCompressed("good-3");
    expect(store.reads).toBe(0);
    await hot.readCompressed("good-2");
    expect(store.reads).toBe(1);
  });

  it("with no memory, and for a chunk larger than all of it, reads every time from the store", async () => {
    const store = countingStore();
    store.chunks.set("good-big", Buffer.from(new ArrayBuffer(5000)));
    const none = new HotChunks({ store }, { maxBytes: 0 });
    const small = new HotChunks({ store }, { maxBytes: 4000 });
    for (const hot of [none, none, small, small]) await hot.readCompressed("good-big");
    expect(store.reads).toBe(4);
    expect(small.stats()).toEqual({ chunks: 0, bytes: 0 });
  });
});
