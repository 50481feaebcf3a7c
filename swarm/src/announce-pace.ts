/**
 * How often a tracker asks its peers to announce: once a second (what
 * agents do while chunks arrive) until its peers together would send more
 * than `TRACKER_ANNOUNCES_PER_SECOND`, then as rarely as keeps them under
 * it, but never slower than a third of the time to live, so that a paced
 * peer is not forgotten. Both sides keep to it: the supernode answers an
 * announce with it (`paceMs`), the agent's announcer waits that long
 * between announces of new chunks.
 */
import { ANNOUNCE_CHANGED_MS, TRACKER_ANNOUNCES_PER_SECOND } from "./constants.ts";

/** The pace for a tracker listing `peers` live peers whose entries live `ttlMs`, ms. */
export function announcePaceMs(peers: number, ttlMs: number): number {
  const pace = Math.ceil((peers * 1000) / TRACKER_ANNOUNCES_PER_SECOND);
  return Math.max(ANNOUNCE_CHANGED_MS, Math.min(pace, Math.floor(ttlMs / 3)));
}
