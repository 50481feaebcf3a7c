import { describe, expect, it } from "vitest";
import { TokenBucket } from "../src/index.ts";

describe("TokenBucket", () => {
  it("spends the burst at once, then meters at the rate", async () => {
    let now = 0;
    const bucket = new TokenBucket({ rate: 1000, burst: 100, now: () => now });
    const t0 = performance.now();
    await bucket.take(100);
    expect(performance.now() - t0).toBeLessThan(20);
    const t1 = performance.now();
    await bucket.take(100); // 100 tokens of debt at 1000/s: ~100 ms
    expect(performance.now() - t1).toBeGreaterThanOrEqual(90);
    now += 10_000; // a long idle refills only up to the burst
    const t2 = performance.now();
    await bucket.take(100);
    await bucket.take(50); // idle time repaid the debt but refilled only to the burst: 50 ms of new debt
    expect(performance.now() - t2).toBeGreaterThanOrEqual(40);
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
