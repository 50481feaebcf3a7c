import { describe, expect, it } from "vitest";
import { HolderList } from "../src/holder-list.ts";

describe("HolderList", () => {
  it("adds each id once, removes any by moving the last into its place, and indexes every position", () => {
    const l = new HolderList(["a", "b", "c", "b"]);
    expect(l.size).toBe(3);
    expect(l.delete("a")).toBe(true);
    expect(l.delete("a")).toBe(false);
    expect([...l]).toEqual(["c", "b"]);
    l.add("d");
    expect(l.delete("d")).toBe(true); // the last one itself
    expect([l.at(0), l.at(1), l.size]).toEqual(["c", "b", 2]);
    l.add("c");
    expect(l.delete("c")).toBe(true);
    expect([...l]).toEqual(["b"]);
  });
});
