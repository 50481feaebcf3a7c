/** The supernode's HTTP API: routing, parsing at the edge, JSON errors `{code, message}`. */
import {
  ANNOUNCE_PATH, BLOBS_PREFIX, BLOCKS_PREFIX, CHUNK_LENGTHS_HEADER, CHUNKS_PREFIX, HEALTH_PATH, INDEX_DIGEST_HEADER, INDEX_OFFSET_HEADER, INDEX_PREFIX, MAX_JSON_BODY, PEERS_PATH,
  NotSwarmMemberError, openTrackerMessage, MAX_TRACE_BYTES, TRACES_PREFIX, PRIORITY_HEADER, SEEKABLE_INDEX_KIND, SEEKABLE_WINDOWS_KIND, parseAnnouncement, parseBasicAuth, parseLayerPath, parsePeerReport, parsePreheatRequest, PREHEAT_PATH, PREHEAT_PREFIX, REPORT_PATH,
  announcePaceMs, type LayerRef, type PeerReport,
} from "@shoal/swarm";
import { AbortedError, BadRequestError, errorBody, httpStatusOf, isSha256Digest, ShoalError } from "@shoal/base";
import { readJson, sendError, sendJson } from "@shoal/service";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { parseRangeHeader, RangeNotSatisfiableError, type BlobService } from "./blob-service.ts";
import type { ChunkRequestOptions, ChunkService } from "./chunk-service.ts";
import type { AnswerGate } from "./answer-gate.ts";
import type { SwarmSeed } from "./swarm-seed.ts";
import type { SeekableIndexes } from "./seekable-indexes.ts";
import type { StartupTraces } from "./startup-traces.ts";
import { type PreheatJobs } from "./preheat.ts";
import { type PeerTable } from "./peer-table.ts";

/** What the API handler needs. */
export interface ApiComponents {
  chunks: ChunkService;
  /** Chunk answers take turns here: background ones yield to those callers wait for. */
  gate: AnswerGate;
  blobs: BlobService;
  seekable: SeekableIndexes;
  traces: StartupTraces;
  /** The supernode's own chunk peer, when it joined the swarm: listed as a holder of what it caches. */
  seed?: SwarmSeed;
  tracker: PeerTable;
  /** `trackerMembershipKey` of the swarm key: announces and reports must prove it. Absent: the tracker takes none. */
  trackerKey?: Uint8Array;
  preheat: PreheatJobs;
  logger: Logger;
  /** Called with the number of chunk bytes sent. */
  served?(bytes: number): void;
  /** Called for each peer report (and whether the peer is banned now). */
  reported?(report: PeerReport, banned: boolean): void;
  /** Called as each request's answer ends (sent, refused or cut short), with its `routeOf` and how long it took from the handler's first look, s. */
  answered?(route: string, seconds: number): void;
  /** False until the supernode is ready. */
  ready(): boolean;
}

/** What of a request the chunk route reads: its URL as sent, and its headers. */
export type RequestHead = Pick<IncomingMessage, "url" | "headers">;

/** The request's URL; `BadRequestError` when it does not parse. */
export function requestUrl(req: RequestHead): URL {
  try {
    return new URL(req.url ?? "/", "http://supernode");
  } catch (err) {
    throw new BadRequestError("malformed request URL", { cause: err });
  }
}

const DECIMAL = /^(0|[1-9][0-9]{0,15})$/;

function decimal(q: URLSearchParams, name: string): number {
  const v = q.get(name);
  if (v === null || !DECIMAL.test(v)) throw new BadRequestError(`query parameter ${name} must be a non-negative integer`);
  return Number(v);
}

/** The routes a request's time is told by: a closed set, whatever the path (a metric's label). */
const ROUTES: ReadonlyArray<readonly [prefix: string, route: string]> = [
  [CHUNKS_PREFIX, "chunks"], [INDEX_PREFIX, "index"], [BLOBS_PREFIX, "blobs"], [BLOCKS_PREFIX, "blocks"], [TRACES_PREFIX, "traces"],
  [PREHEAT_PREFIX, "preheat"], [PREHEAT_PATH, "preheat"], [ANNOUNCE_PATH, "announce"], [PEERS_PATH, "peers"], [REPORT_PATH, "report"], [HEALTH_PATH, "health"],
];

/** The route of a request's path, for its metric: chunks, index, blobs, blocks, traces, preheat, announce, peers, report, health, or other. */
export function routeOf(path: string): string {
  const hit = ROUTES.find(([prefix]) => (prefix.endsWith("/") ? path.startsWith(prefix) : path === prefix));
  return hit ? hit[1] : "other";
}

/** A node:http request listener for the supernode API. Never throws; every failure becomes a JSON error. */
export function createApiHandler(c: ApiComponents): (req: IncomingMessage, res: ServerResponse) => void {
  const log = c.logger.child({ component: "api" });
  return (req, res) => {
    const ac = new AbortController();
    const started = performance.now();
    res.on("close", () => {
      if (!res.writableFinished) ac.abort(new AbortedError("client went away"));
      c.answered?.(routeOf((req.url ?? "").split("?")[0]!), (performance.now() - started) / 1000);
    });
    handle(c, req, res, ac.signal).catch((err: unknown) => {
      const status = httpStatusOf(err);
      if (status >= 500) log.warn({ method: req.method, path: (req.url ?? "").split("?")[0], err }, "request failed");
      else log.debug({ method: req.method, path: (req.url ?? "").split("?")[0], code: errorBody(err).code }, "request refused");
      if (err instanceof RangeNotSatisfiableError && !res.headersSent) res.setHeader("content-range", `bytes */${err.size}`);
      sendError(res, err);
    });
  };
}

/**
 * The blob a `/v1/chunks|index|blobs/<registry>/<repo>/<digest>` request
 * names, and the options to serve it with: the caller's credentials, and the
 * `index` query parameter as a hint when given. The raw path is parsed so
 * that %2F inside a segment cannot forge extra segments.
 */
function blobRequest(req: RequestHead, url: URL, prefix: string, signal: AbortSignal): { layer: LayerRef; opts: ChunkRequestOptions } {
  const rawPath = (req.url ?? "").split("?")[0]!;
  const layer = parseLayerPath(rawPath.slice(prefix.length));
  const indexDigest = url.searchParams.get("index");
  if (indexDigest !== null && !isSha256Digest(indexDigest)) throw new BadRequestError("query parameter index must be a sha256:<hex> digest");
  const credentials = parseBasicAuth(req.headers.authorization);
  return { layer, opts: { signal, ...(credentials ? { credentials } : {}), ...(indexDigest ? { hint: { indexDigest } } : {}) } };
}

/**
 * Where a chunk answer goes: the HTTP response (`responseSink`), or a
 * message channel to the API thread that holds the caller's connection
 * (`api-threads.ts`).
 */
export interface ChunkSink {
  /** The status and headers, once, before any bytes. */
  head(status: number, headers: Record<string, string | number>): void;
  /** One chunk's bytes; resolves when the sink takes more (or the caller went away). */
  write(bytes: Buffer): Promise<void> | void;
  end(): void;
  /** Cut the answer short: the caller sees it incomplete and asks again. */
  cut(): void;
  /** The caller went away. */
  closed(): boolean;
}

/** A `ChunkSink` writing to `res`, waiting for it to drain. */
export function responseSink(res: ServerResponse): ChunkSink {
  return {
    head: (status, headers) => void res.writeHead(status, headers),
    write: (bytes) => {
      if (res.write(bytes)) return;
      return new Promise<void>((resolve) => {
        const done = () => {
          res.off("drain", done);
          res.off("close", done);
          resolve();
        };
        res.on("drain", done);
        res.on("close", done);
      });
    },
    end: () => void res.end(),
    cut: () => void res.destroy(),
    closed: () => res.destroyed,
  };
}

/**
 * Answer `GET /v1/chunks/<registry>/<repo>/<digest>?first=A&last=B` into
 * `sink`: the headers once the request is checked and the first chunk is
 * here, then each chunk as it arrives. A background request (the
 * priority header) first waits its turn at `c.gate`. Throws (for the
 * caller to answer as a JSON error) only before the headers; after them a
 * failed chunk cuts the answer short.
 */
export async function answerChunks(c: ApiComponents, req: RequestHead, url: URL, signal: AbortSignal, sink: ChunkSink): Promise<void> {
  if (!c.ready()) throw new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is not ready");
  const { layer, opts } = blobRequest(req, url, CHUNKS_PREFIX, signal);
  const priority = req.headers[PRIORITY_HEADER];
  if (priority !== undefined && priority !== "background") throw new BadRequestError(`header ${PRIORITY_HEADER} must be background or absent`);
  const background = priority !== undefined;
  const firstChunk = decimal(url.searchParams, "first");
  const lastChunk = decimal(url.searchParams, "last");
  const end = background ? await c.gate.background(signal) : c.gate.onDemand();
  try {
    await sendChunks(c, layer, firstChunk, lastChunk, { ...opts, ...(background ? { background } : {}) }, sink, url);
  } finally {
    end();
  }
}

/** The chunks' answer into `sink` (see `answerChunks`). */
async function sendChunks(c: ApiComponents, layer: LayerRef, firstChunk: number, lastChunk: number, opts: ChunkRequestOptions, sink: ChunkSink, url: URL): Promise<void> {
  const started = performance.now();
  const { lengths, parts } = await c.chunks.streamChunks(layer, firstChunk, lastChunk, opts);
  // the lengths come from the index: the answer starts before its chunks are all here, and each goes out as it arrives
  const first = await parts[0]!;
  const firstMs = performance.now() - started;
  const total = lengths.reduce((n, l) => n + l, 0);
  sink.head(200, {
    "content-type": "application/octet-stream",
    "content-length": total,
    [CHUNK_LENGTHS_HEADER]: lengths.join(","),
  });
  for (const [k, p] of parts.entries()) {
    let bytes: Buffer;
    try {
      bytes = k === 0 ? first : await p;
    } catch (err) {
      // headers are out: cut the answer short, so the caller sees it incomplete and asks again
      c.logger.warn({ path: url.pathname, chunk: k, err }, "a chunk failed after its answer started; answer cut short");
      sink.cut();
      return;
    }
    if (bytes.length !== lengths[k]) {
      sink.cut();
      return;
    }
    await sink.write(bytes);
    if (sink.closed()) return;
  }
  sink.end();
  c.served?.(total);
  // when the first chunk was ready, and when the last was handed to the socket
  c.logger.debug({ layer: layer.digest, first: firstChunk, last: lastChunk, bytes: total, background: opts.background === true, firstMs: Math.round(firstMs), ms: Math.round(performance.now() - started) }, "chunks served");
}

/** `answerChunks` for a request an API thread holds, its time told to `c.answered` as the handler's are. */
export async function timedAnswerChunks(c: ApiComponents, req: RequestHead, url: URL, signal: AbortSignal, sink: ChunkSink): Promise<void> {
  const started = performance.now();
  try {
    await answerChunks(c, req, url, signal, sink);
  } finally {
    c.answered?.("chunks", (performance.now() - started) / 1000);
  }
}

/** The membership key announces and reports must prove; none: this tracker takes no one. */
function trackerKey(c: ApiComponents): Uint8Array {
  if (!c.trackerKey) throw new NotSwarmMemberError("this supernode has no swarm key, so its tracker takes no announces or reports (start it with --swarm-key)");
  return c.trackerKey;
}

async function handle(c: ApiComponents, req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
  const url = requestUrl(req);
  const path = url.pathname;
  const method = req.method ?? "GET";
  const route = (m: string, p: string) => method === m && path === p;

  if (!c.ready()) throw new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "supernode is not ready");
  if (route("GET", HEALTH_PATH)) {
    return sendJson(res, 200, { ok: true, ...(c.seed ? { peerId: c.seed.peerId, addrs: c.seed.addrs } : {}) });
  }
  if (method === "GET" && path.startsWith(CHUNKS_PREFIX)) return answerChunks(c, req, url, signal, responseSink(res));
  if ((method === "GET" || method === "HEAD") && path.startsWith(BLOBS_PREFIX)) {
    const { layer: blob, opts } = blobRequest(req, url, BLOBS_PREFIX, signal);
    const size = await c.blobs.size(blob, opts);
    const range = parseRangeHeader(req.headers.range, size);
    const { start, end } = range ?? { start: 0, end: size };
    const headers: Record<string, string | number> = { "content-type": "application/octet-stream", "content-length": end - start, "accept-ranges": "bytes", "docker-content-digest": blob.digest };
    if (range) headers["content-range"] = `bytes ${start}-${end - 1}/${size}`;
    res.writeHead(range ? 206 : 200, headers);
    if (method === "HEAD" || end === start) return void res.end();
    await c.blobs.read(blob, start, end, async (piece) => {
      if (!res.write(piece)) await new Promise<void>((resolve) => res.once("drain", resolve));
    }, opts);
    res.end();
    c.served?.(end - start);
    return;
  }
  if (method === "GET" && path.startsWith(BLOCKS_PREFIX)) {
    const { layer: blob, opts } = blobRequest(req, url, BLOCKS_PREFIX, signal);
    return sendJson(res, 200, await c.blobs.blockList(blob, opts));
  }
  if (method === "GET" && path.startsWith(INDEX_PREFIX)) {
    const { layer, opts } = blobRequest(req, url, INDEX_PREFIX, signal);
    const kind = url.searchParams.get("kind");
    if (kind === SEEKABLE_INDEX_KIND) {
      const built = await c.seekable.get(layer, opts);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": built.bytes.length, [INDEX_DIGEST_HEADER]: built.digest });
      res.end(built.bytes);
      c.served?.(built.bytes.length);
      return;
    }
    if (kind === SEEKABLE_WINDOWS_KIND) {
      const built = await c.seekable.get(layer, opts);
      const range = parseRangeHeader(req.headers.range, built.pack.length) ?? { start: 0, end: built.pack.length };
      const part = built.pack.subarray(range.start, range.end);
      res.writeHead(req.headers.range ? 206 : 200, {
        "content-type": "application/octet-stream", "content-length": part.length,
        ...(req.headers.range ? { "content-range": `bytes ${range.start}-${range.end - 1}/${built.pack.length}` } : {}),
      });
      res.end(part);
      c.served?.(part.length);
      return;
    }
    if (kind !== null) throw new BadRequestError(`query parameter kind must be ${SEEKABLE_INDEX_KIND}, ${SEEKABLE_WINDOWS_KIND} or absent`);
    const cached = await c.chunks.getIndex(layer, opts);
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": cached.bytes.length,
      [INDEX_OFFSET_HEADER]: String(cached.location.offset),
      [INDEX_DIGEST_HEADER]: cached.indexDigest,
    });
    res.end(cached.bytes);
    c.served?.(cached.bytes.length);
    return;
  }
  if ((method === "GET" || method === "PUT") && path.startsWith(TRACES_PREFIX)) {
    const { layer: image, opts } = blobRequest(req, url, TRACES_PREFIX, signal);
    const call = { signal, ...(opts.credentials ? { credentials: opts.credentials } : {}) };
    if (method === "GET") return sendJson(res, 200, await c.traces.get(image, call));
    const stored = await c.traces.put(image, await readJson(req, { maxBytes: MAX_TRACE_BYTES, signal }), call);
    return sendJson(res, 200, { stored });
  }
  if (route("POST", REPORT_PATH)) {
    const r = parsePeerReport(openTrackerMessage(await readJson(req, { maxBytes: MAX_JSON_BODY, signal }), "report", trackerKey(c)));
    const banned = c.tracker.report(r);
    if (banned === "unknown-reporter") throw new NotSwarmMemberError(`report: peer ${r.reporter} has not announced to this tracker long enough for its reports to count`);
    if (banned === "rate-limited") throw new ShoalError("SHOAL_ERR_TOO_MANY_REPORTS", `report: peer ${r.reporter} reports more often than this tracker takes; try again in a minute`);
    c.reported?.(r, banned);
    return sendJson(res, 200, { banned });
  }
  if (route("POST", ANNOUNCE_PATH)) {
    const { ts, ...fields } = openTrackerMessage(await readJson(req, { maxBytes: MAX_JSON_BODY, signal }), "announce", trackerKey(c));
    const ttlMs = c.tracker.announce(parseAnnouncement(fields), ts);
    return sendJson(res, 200, { ttlMs, paceMs: announcePaceMs(c.tracker.stats().peers, ttlMs) });
  }
  if (route("GET", PEERS_PATH)) {
    const layer = url.searchParams.get("layer");
    if (layer === null || !isSha256Digest(layer)) throw new BadRequestError("query parameter layer must be a sha256:<hex> digest");
    const chunk = url.searchParams.get("chunk");
    if (chunk !== null && !/^(0|[1-9][0-9]{0,8})$/.test(chunk)) throw new BadRequestError("query parameter chunk must be a chunk index");
    const chunkIndex = chunk === null ? undefined : Number(chunk);
    const self = c.seed?.holder(layer, chunkIndex);
    return sendJson(res, 200, [...c.tracker.peers(layer, chunkIndex), ...(self ? [self] : [])]);
  }
  if (route("POST", PREHEAT_PATH)) {
    const body = parsePreheatRequest(await readJson(req, { maxBytes: MAX_JSON_BODY, signal }));
    const credentials = parseBasicAuth(req.headers.authorization);
    const id = c.preheat.start(body, credentials ? { credentials } : {});
    return sendJson(res, 202, { id });
  }
  if (method === "GET" && path.startsWith(PREHEAT_PREFIX)) {
    return sendJson(res, 200, c.preheat.status(path.slice(PREHEAT_PREFIX.length)));
  }
  throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no route ${method} ${path.slice(0, 200)}`);
}
