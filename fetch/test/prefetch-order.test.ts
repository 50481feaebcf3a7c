import { describe, expect, it } from "vitest";
import { prefetchOrder } from "../src/index.ts";

describe("prefetchOrder", () => {
  it("takes the startup order first, then each layer from a random chunk wrapping around, each chunk once", () => {
    const { order, startup } = prefetchOrder([4, 3], [[1, 2], [0, 9], [1, 2], [0, 1]], { random: () => 0.5 });
    expect(startup).toBe(2); // [0, 9] is outside layer 0, and [1, 2] came twice
    expect(order).toEqual([[1, 2], [0, 1], [0, 2], [0, 3], [0, 0], [1, 1], [1, 0]]);
  });

  it("starts each layer at chunk 0 when not spread", () => {
    expect(prefetchOrder([3], [], { spread: false, random: () => 0.9 }).order).toEqual([[0, 0], [0, 1], [0, 2]]);
  });
});
