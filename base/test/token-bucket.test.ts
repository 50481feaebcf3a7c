import { describe, expect, it } from "vitest";
import { TokenBucket } from "../src/index.ts";

/** A bucket on a clock the test moves; every wait it asks for is recorded, and passes at once. */
function meteredBucket(rate: number, burst: number) {
  let now = 0;
  const waits: number[] = [];
  const bucket = new TokenBucket({ rate, burst }, {
    now: () => now,
    sleep: async (ms) => {
      waits.push(Math.round(ms));
      now += ms;
    },
  });
  return { bucket, waits, advance: (ms: number) => (now += ms) };
}

describe("TokenBucket", () => {
  it("spends the burst at once, then meters at the rate", async () => {
    const { bucket, waits, advance } = meteredBucket(1000, 100);
    await bucket.take(100);
    expect(waits).toEqual([]);
    await bucket.take(100); // 100 tokens of debt at 1000/s
    expect(waits).toEqual([100]);
    advance(10_000); // a long idle refills only up to the burst
    await bucket.take(100);
    await bucket.take(50);
    expect(waits).toEqual([100, 50]);
  });

  it("keeps concurrent callers to the rate together", async () => {
    const { bucket, waits } = meteredBucket(1000, 0);
    await Promise.all([bucket.take(500), bucket.take(500)]);
    // the second caller queues behind the first one's debt
    expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(1000);
  });

  it("is unlimited with rate 0 and rejects with the abort reason", async () => {
    await new TokenBucket({ rate: 0 }).take(1e12);
    const bucket = new TokenBucket({ rate: 10, burst: 0 });
    const ac = new AbortController();
    const p = bucket.take(100, { signal: ac.signal });
    ac.abort(new Error("stop"));
    await expect(p).rejects.toThrow("stop");
  });
});
