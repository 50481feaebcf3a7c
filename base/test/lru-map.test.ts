import { describe, expect, it } from "vitest";
import { LruMap } from "../src/index.ts";

describe("LruMap", () => {
  it("keeps at most maxEntries, dropping the least recently used", () => {
    const m = new LruMap<string, number>({ maxEntries: 2 });
    m.set("a", 1).set("b", 2);
    expect(m.get("a")).toBe(1); // a is now the most recent
    m.set("c", 3);
    expect([m.has("a"), m.has("b"), m.has("c")]).toEqual([true, false, true]);
    expect(m.size).toBe(2);
    expect([...m.values()]).toEqual([1, 3]);
  });

  it("keeps the total weight within maxWeight, but never drops the entry just set", () => {
    const m = new LruMap<string, Buffer>({ maxEntries: 100, maxWeight: 10, weigh: (b) => b.length });
    m.set("a", Buffer.alloc(4)).set("b", Buffer.alloc(4));
    m.set("c", Buffer.alloc(4));
    expect([m.has("a"), m.has("b"), m.has("c"), m.weight]).toEqual([false, true, true, 8]);
    m.set("huge", Buffer.alloc(50));
    expect([m.size, m.has("huge"), m.weight]).toEqual([1, true, 50]);
    m.set("huge", Buffer.alloc(1));
    expect(m.weight).toBe(1);
    expect(m.delete("huge")).toBe(true);
    expect(m.weight).toBe(0);
  });
});
