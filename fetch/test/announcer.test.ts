import { afterEach, describe, expect, it, vi } from "vitest";
import type { TrackerClient } from "@shoal/swarm";
import { Announcer } from "../src/index.ts";

/** An announcer whose chunks change all the time, and the tracker's pace (undefined: an older tracker that asks none). */
function streaming(pace: number | undefined) {
  let version = 0;
  const calls: number[] = [];
  const tracker = { announce: async () => (calls.push(Date.now()), pace) } as unknown as TrackerClient;
  const announcer = new Announcer({ tracker, self: { peerId: "p", addrs: [] }, layers: () => [], has: () => false, version: () => version++ }, { changedMs: 100, everyMs: 1000 });
  return { announcer, calls };
}

describe("Announcer", () => {
  afterEach(() => vi.useRealTimers());

  it("announces new chunks once per changedMs, and only once per the pace a busy tracker asks for", async () => {
    vi.useFakeTimers();
    const free = streaming(undefined);
    await free.announcer.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await free.announcer.stop();
    expect(free.calls.length).toBeGreaterThanOrEqual(90);

    const paced = streaming(2_000);
    await paced.announcer.start();
    await vi.advanceTimersByTimeAsync(10_000);
    await paced.announcer.stop();
    expect(paced.announcer.paceMs()).toBe(2_000);
    expect(paced.calls.length).toBeGreaterThanOrEqual(5);
    expect(paced.calls.length).toBeLessThanOrEqual(6);
    for (let k = 1; k < paced.calls.length; k++) expect(paced.calls[k]! - paced.calls[k - 1]!).toBeGreaterThanOrEqual(2_000);
  });
});
