// The fetcher's hedge delay: its floor, or a few times a source's own average latency.
import { describe, expect, it } from "vitest";
import { DEFAULT_HEDGE_MS, hedgeDelayMs, latencyAverage } from "../src/index.ts";

describe("hedgeDelayMs and latencyAverage", () => {
  it("waits the floor on a source with no record or a fast one, and three times the average on a slow one", () => {
    expect(hedgeDelayMs(DEFAULT_HEDGE_MS, undefined)).toBe(DEFAULT_HEDGE_MS);
    expect(hedgeDelayMs(DEFAULT_HEDGE_MS, 200)).toBe(DEFAULT_HEDGE_MS);
    expect(hedgeDelayMs(DEFAULT_HEDGE_MS, 500)).toBe(1_500);
  });

  it("starts the average at the first sample and moves it a fifth of the way to each next one", () => {
    expect(latencyAverage(undefined, 40)).toBe(40);
    expect(latencyAverage(40, 90)).toBe(50);
    expect(latencyAverage(50, 0)).toBe(40);
  });
});
