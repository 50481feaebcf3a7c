/** The limits and timings of the supernode API that both sides keep to. */

/** Most peers one `GET /v1/peers` answers from the tracker (a random sample of the holders). */
export const MAX_PEERS_ANSWERED = 64;
/** Most chunks one `GET /v1/chunks` may ask for; clients split longer runs. */
export const MAX_CHUNKS_PER_REQUEST = 256;
/** Largest JSON request body, bytes. */
export const MAX_JSON_BODY = 1024 * 1024;
/** Agents announce at most this often while chunks arrive, ms. */
export const ANNOUNCE_CHANGED_MS = 1_000;
/** Agents announce at least this often (the tracker forgets peers that stay silent), ms. */
export const ANNOUNCE_EVERY_MS = 10_000;
/**
 * Announces a tracker takes per second from all its peers, at most: past
 * it, it asks each peer to announce less often (`announcePaceMs`). Every
 * supernode takes every peer's announces, and one costs a supernode about
 * 0.5 ms of its one core (bench/RESULTS.md): 200 a second is a tenth.
 */
export const TRACKER_ANNOUNCES_PER_SECOND = 200;
/** A supernode that could not be reached, timed out or answered 5xx is skipped this long, ms. */
export const SUPERNODE_DOWN_MS = 10_000;
