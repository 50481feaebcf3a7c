import { afterEach, describe, expect, it, vi } from "vitest";
import type { TrackerClient } from "@shoal/swarm";
import { Announcer } from "../src/index.ts";

/** An announcer whose chunks change all the time, and the tracker's pace (undefined: an older tracker that asks none), answering after `answerMs`. */
function streaming(pace: number | undefined, answerMs = 0) {
  let version = 0;
  const calls: number[] = [];
  const tracker = { announce: async () => {
    calls.push(Date.now());
    if (answerMs > 0) await new Promise((r) => setTimeout(r, answerMs));
    return pace;
  } } as unknown as TrackerClient;
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

  it("never has two announces in flight: a slow tracker gets the next once it answered, and a change meanwhile is announced after", async () => {
    vi.useFakeTimers();
    const slow = streaming(undefined, 350);
    const started = slow.announcer.start();
    await vi.advanceTimersByTimeAsync(3_000);
    await started;
    for (let k = 1; k < slow.calls.length; k++) expect(slow.calls[k]! - slow.calls[k - 1]!).toBeGreaterThanOrEqual(350);
    expect(slow.calls.length).toBeGreaterThanOrEqual(6);
    // the mounts change twice while one is in flight: one more announce after it, not two beside it
    await vi.advanceTimersByTimeAsync(50);
    await slow.announcer.stop();
    await vi.advanceTimersByTimeAsync(1_000);
    const before = slow.calls.length;
    const first = slow.announcer.announce();
    const second = slow.announcer.announce();
    const third = slow.announcer.announce();
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all([first, second, third]);
    expect(slow.calls.length - before).toBe(2);
    expect(slow.calls.at(-1)! - slow.calls.at(-2)!).toBeGreaterThanOrEqual(350);
  });
});
