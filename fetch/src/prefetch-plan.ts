/**
 * What the prefetcher fetches, and in which requests, decided apart from
 * fetching it: the fleet simulator (bench/src/sim) calls these too.
 */
import { MAX_RUN_BYTES } from "./fetcher.ts";

/** A chunk by position: layer number in the image (0 = bottom) and chunk index. */
export type ChunkPos = readonly [layer: number, chunk: number];

/** Adjacent chunks `first..last` of layer `layer`, fetched in one request. */
export type Run = readonly [layer: number, first: number, last: number];

/** A chunk's length in the blob (compressed), by position. */
export type LengthOf = (layer: number, chunk: number) => number;

/**
 * Largest run the background stream fetches in one request: small enough
 * that an agent killed mid-run loses little, large enough to keep request
 * overhead low.
 */
export const BACKGROUND_RUN_BYTES = 1 << 20;

/**
 * The order a background stream takes, decided apart from fetching it (the
 * fleet simulator calls it too): `first` (the recorded startup order),
 * then the rest layer by layer, each from a random chunk wrapping around
 * (`spread`, the default; from chunk 0 otherwise), so that agents streaming
 * the same image at the same moment hold different chunks early and can
 * serve each other. Positions outside the layers and repeats are dropped;
 * `startup` is how many of `order` came from `first`; `from`, for each
 * layer, the chunk its part of the stream begins from.
 */
export function prefetchOrder(chunkCounts: readonly number[], first: readonly ChunkPos[], opts: { spread?: boolean; random?: () => number } = {}): { order: ChunkPos[]; startup: number; from: number[] } {
  const seen = new Set<string>();
  const order: ChunkPos[] = [];
  const add = (p: ChunkPos) => {
    const key = `${p[0]}:${p[1]}`;
    const n = chunkCounts[p[0]];
    if (n === undefined || p[1] < 0 || p[1] >= n || seen.has(key)) return;
    seen.add(key);
    order.push(p);
  };
  for (const p of first) add(p);
  const startup = order.length;
  const random = opts.random ?? Math.random;
  const from = chunkCounts.map((n, li) => {
    const start = opts.spread === false || n === 0 ? 0 : Math.floor(random() * n);
    for (let k = 0; k < n; k++) add([li, (start + k) % n]);
    return start;
  });
  return { order, startup, from };
}

/**
 * The startup chunks (`startup`, in the order they were first read) as runs
 * of adjacent chunks up to `maxBytes`, in the order of each run's earliest
 * read: what the prefetcher fetches at once after a mount.
 */
export function startupRuns(startup: readonly ChunkPos[], lengthOf: LengthOf, maxBytes = MAX_RUN_BYTES): Run[] {
  const rank = new Map(startup.map(([li, c], k) => [`${li}:${c}`, k]));
  const sorted = [...startup].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const runs: Array<{ run: [number, number, number]; at: number; bytes: number }> = [];
  for (const [li, c] of sorted) {
    const len = lengthOf(li, c);
    const at = rank.get(`${li}:${c}`)!;
    const cur = runs.at(-1);
    if (cur && cur.run[0] === li && cur.run[2] === c - 1 && cur.bytes + len <= maxBytes) {
      cur.run[2] = c;
      cur.bytes += len;
      cur.at = Math.min(cur.at, at);
    } else runs.push({ run: [li, c, c], at, bytes: len });
  }
  return runs.sort((x, y) => x.at - y.at).map((x) => x.run);
}

/**
 * The background stream's next request: takes from the front of `queue`
 * the first chunk not yet local (`has`), and behind it the adjacent missing
 * chunks queued right after it, up to `maxBytes` in all. Undefined when
 * the queue holds nothing missing.
 */
export function takeRun(queue: ChunkPos[], has: (layer: number, chunk: number) => boolean, lengthOf: LengthOf, maxBytes = BACKGROUND_RUN_BYTES): Run | undefined {
  let head: ChunkPos | undefined;
  while ((head = queue.shift()) && has(head[0], head[1]));
  if (!head) return undefined;
  const [li, first] = head;
  let last = first;
  let bytes = lengthOf(li, first);
  while (queue.length > 0) {
    const [nl, nc] = queue[0]!;
    if (nl !== li || nc !== last + 1 || has(nl, nc)) break;
    const more = lengthOf(nl, nc);
    if (bytes + more > maxBytes) break;
    queue.shift();
    last = nc;
    bytes += more;
  }
  return [li, first, last];
}
