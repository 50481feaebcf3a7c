import { describe, expect, it } from "vitest";
import { prefetchOrder, startupRuns, takeRun, type ChunkPos } from "../src/index.ts";

describe("prefetchOrder", () => {
  it("takes the startup order first, then each layer from a random chunk wrapping around, each chunk once", () => {
    const { order, startup, from } = prefetchOrder([4, 3], [[1, 2], [0, 9], [1, 2], [0, 1]], { random: () => 0.5 });
    expect(startup).toBe(2); // [0, 9] is outside layer 0, and [1, 2] came twice
    expect(order).toEqual([[1, 2], [0, 1], [0, 2], [0, 3], [0, 0], [1, 1], [1, 0]]);
    expect(from).toEqual([2, 1]); // where each layer's part began, the startup chunks taken out or not
  });

  it("says where each layer's part began, drawn once per non-empty layer", () => {
    const draws = [0.99, 0.25];
    const { from, order } = prefetchOrder([5, 0, 4], [], { random: () => draws.shift()! });
    expect(from).toEqual([4, 0, 1]);
    expect(order.slice(0, 2)).toEqual([[0, 4], [0, 0]]);
    expect(order[5]).toEqual([2, 1]);
  });

  it("starts each layer at chunk 0 when not spread", () => {
    const { order, from } = prefetchOrder([3], [], { spread: false, random: () => 0.9 });
    expect(order).toEqual([[0, 0], [0, 1], [0, 2]]);
    expect(from).toEqual([0]);
  });
});

describe("startupRuns", () => {
  const ten = () => 10;
  it("joins adjacent chunks of a layer, in the order of each run's earliest read", () => {
    expect(startupRuns([[1, 5], [0, 3], [0, 2], [1, 4], [0, 7]], ten)).toEqual([[1, 4, 5], [0, 2, 3], [0, 7, 7]]);
  });

  it("cuts a run at the byte limit", () => {
    expect(startupRuns([[0, 0], [0, 1], [0, 2]], ten, 20)).toEqual([[0, 0, 1], [0, 2, 2]]);
  });
});

describe("takeRun", () => {
  const ten = () => 10;
  it("skips chunks already local, then extends over the adjacent missing chunks queued behind", () => {
    const queue: ChunkPos[] = [[0, 1], [0, 2], [0, 3], [0, 4], [0, 6], [1, 0]];
    const local = new Set(["0:1", "0:4"]);
    const has = (li: number, c: number) => local.has(`${li}:${c}`);
    expect(takeRun(queue, has, ten)).toEqual([0, 2, 3]);
    expect(queue).toEqual([[0, 4], [0, 6], [1, 0]]);
    expect(takeRun(queue, has, ten)).toEqual([0, 6, 6]);
    expect(takeRun(queue, has, ten)).toEqual([1, 0, 0]);
    expect(takeRun(queue, has, ten)).toBeUndefined();
  });

  it("stops at the byte limit", () => {
    const queue: ChunkPos[] = [[0, 0], [0, 1], [0, 2]];
    expect(takeRun(queue, () => false, ten, 25)).toEqual([0, 0, 1]);
    expect(queue).toEqual([[0, 2]]);
  });
});
