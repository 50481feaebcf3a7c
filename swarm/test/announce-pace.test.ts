import { describe, expect, it } from "vitest";
import { ANNOUNCE_CHANGED_MS, announcePaceMs, TRACKER_ANNOUNCES_PER_SECOND } from "../src/index.ts";

describe("announcePaceMs", () => {
  it("keeps a tracker's peers together under TRACKER_ANNOUNCES_PER_SECOND, never faster than once a second nor slower than a third of the TTL", () => {
    const ttl = 60_000;
    expect(announcePaceMs(0, ttl)).toBe(ANNOUNCE_CHANGED_MS);
    expect(announcePaceMs(TRACKER_ANNOUNCES_PER_SECOND, ttl)).toBe(ANNOUNCE_CHANGED_MS);
    for (const peers of [1_000, 3_000]) {
      const pace = announcePaceMs(peers, ttl);
      expect(pace).toBeGreaterThan(ANNOUNCE_CHANGED_MS);
      expect((peers * 1000) / pace).toBeLessThanOrEqual(TRACKER_ANNOUNCES_PER_SECOND);
    }
    expect(announcePaceMs(10_000, ttl)).toBe(20_000);
    expect(announcePaceMs(10_000, 1_000)).toBe(ANNOUNCE_CHANGED_MS);
  });
});
