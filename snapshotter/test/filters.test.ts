import { describe, expect, it } from "vitest";
import { parseFilter, parseFilters } from "../src/filters.ts";

describe("containerd filters: caller-supplied patterns run in linear time, bounded in size", () => {
  it("a pattern that backtracks exponentially in JavaScript's default engine ends at once (RE2's semantics)", () => {
    // with backtracking, 40 'a's and a 'b' take about 2^40 steps: this test would never end
    const match = parseFilters(['name~="^(a+)+$"']);
    expect(match((p) => (p[0] === "name" ? `${"a".repeat(40)}b` : undefined))).toBe(false);
    expect(match((p) => (p[0] === "name" ? "a".repeat(40) : undefined))).toBe(true);
  });

  it("refuses what RE2 refuses (backreferences, lookarounds) and oversized filters, with a clear error", () => {
    expect(() => parseFilter('name~="(a)\\\\1"')).toThrow(/bad regular expression/);
    expect(() => parseFilter('name~="a(?=b)"')).toThrow(/bad regular expression/);
    expect(() => parseFilter(`name~="${"a".repeat(2000)}"`)).toThrow(/longer than 1024/);
    expect(() => parseFilter(`name==${"x".repeat(5000)}`)).toThrow(/longer than 4096/);
  });
});
