/**
 * The one client of the supernode API. Every caller (the agent's chunk and
 * index sources, its tracker client, `shoal preheat`) goes through it, so
 * the routes, the decoding of answers and the errors are coded once.
 */
import { isErrorCode, RangeSplitter, ShoalError, type ErrorCode } from "@shoal/base";
import { MAX_CHUNKS_PER_REQUEST } from "./constants.ts";
import { readResponseUpTo, type Credentials } from "@shoal/oci";
import { basicAuthorization } from "./credentials.ts";
import type { LayerRef } from "./layer-ref.ts";
import {
  parseBlockList, parseHolders, parsePreheatStatus, type BlockList, type Health, type Holder, type PreheatStatus,
} from "./messages.ts";
import type { TrackerEnvelope } from "./tracker-auth.ts";
import {
  ANNOUNCE_PATH, blobRoute, blocksRoute, CHUNK_LENGTHS_HEADER, chunksRoute, HEALTH_PATH, indexRoute, peersRoute, PREHEAT_PATH, preheatJobRoute, REPORT_PATH, seekableIndexRoute, seekableWindowsRoute, traceRoute, PRIORITY_HEADER,
} from "./routes.ts";
import { MAX_TRACE_BYTES, parseStartupTrace, type StartupTrace } from "./startup-trace.ts";

/**
 * A supernode call that failed. `code` says how: `SHOAL_ERR_SUPERNODE_UNAVAILABLE`
 * (unreachable, timed out, or 5xx: try the next supernode),
 * `SHOAL_ERR_SUPERNODE_REJECTED` (4xx: the request itself was refused, as
 * another supernode would refuse it too) or `SHOAL_ERR_SUPERNODE_PROTOCOL`
 * (an answer the client cannot use). `remoteCode` is the supernode's own
 * error code, when it answered one.
 */
export class SupernodeCallError extends ShoalError {
  readonly status: number | undefined;
  readonly remoteCode: ErrorCode | undefined;
  constructor(code: "SHOAL_ERR_SUPERNODE_UNAVAILABLE" | "SHOAL_ERR_SUPERNODE_REJECTED" | "SHOAL_ERR_SUPERNODE_PROTOCOL", message: string, init: { status?: number; remoteCode?: ErrorCode; cause?: unknown } = {}) {
    super(code, message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.remoteCode = init.remoteCode;
  }
}

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** The caller's registry credentials, passed on for the supernode's access check. */
  credentials?: Credentials;
}

/** A typed client of one supernode's API (see `routes.ts`). */
/** Largest layer index or seekable index taken from a supernode. */
const MAX_INDEX_ANSWER = 256 << 20;
/** Largest JSON answer taken from a supernode (peer lists with bitmaps, preheat status). */
const MAX_JSON_ANSWER = 32 << 20;

export class SupernodeClient {
  /** Base URL, without a trailing slash. */
  readonly url: string;

  constructor(init: { url: string }) {
    this.url = init.url.replace(/\/+$/, "");
  }

  /**
   * Compressed bytes of chunks `first..last` (inclusive chunk positions) of
   * the lazy layer `layer`, one buffer per chunk, in order, as the
   * supernode sent them (unverified). Runs longer than the API's limit go
   * in several requests. `onChunk(k, bytes)` gets chunk `first + k` as soon
   * as its bytes have arrived, before the whole answer has. `background`:
   * nobody waits for them (the supernode's origin fetches for it yield).
   */
  async chunks(layer: LayerRef, first: number, last: number, opts: CallOptions & { indexDigest?: string; onChunk?: (k: number, bytes: Uint8Array) => void; background?: boolean } = {}): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (let from = first; from <= last; from += MAX_CHUNKS_PER_REQUEST) {
      const to = Math.min(last, from + MAX_CHUNKS_PER_REQUEST - 1);
      const res = await this.#call("GET", chunksRoute(layer, from, to, opts.indexDigest), opts, undefined, opts.background ? { [PRIORITY_HEADER]: "background" } : undefined);
      const lengths = (res.headers.get(CHUNK_LENGTHS_HEADER) ?? "").split(",").map(Number);
      if (lengths.length !== to - from + 1 || lengths.some((n) => !Number.isSafeInteger(n) || n < 0)) {
        await res.body?.cancel().catch(() => undefined);
        throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: chunk lengths do not match the ${to - from + 1} chunks sent`);
      }
      const base = out.length;
      const pieces = await splitBody(res, lengths, (k, bytes) => opts.onChunk?.(base + k, bytes), this.url, opts.signal);
      if (!pieces) throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: chunk lengths do not match the ${to - from + 1} chunks sent`);
      out.push(...pieces);
    }
    return out;
  }

  /**
   * The startup trace of image `image` (`digest`: its manifest digest), or
   * undefined when the supernode holds none. Throws `SUPERNODE_PROTOCOL` for
   * one that is not a well-formed trace (the caller checks it names its image).
   */
  async trace(image: LayerRef, opts: CallOptions = {}): Promise<StartupTrace | undefined> {
    let res: Response;
    try {
      res = await this.#call("GET", traceRoute(image), opts);
    } catch (err) {
      if (err instanceof SupernodeCallError && err.status === 404) return undefined;
      throw err;
    }
    const { bytes, cut } = await readResponseUpTo(res, MAX_TRACE_BYTES);
    const text = bytes.toString("utf8");
    if (cut) throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: the startup trace of ${image.digest} is larger than ${MAX_TRACE_BYTES} bytes`);
    try {
      return parseStartupTrace(JSON.parse(text));
    } catch (err) {
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: the startup trace of ${image.digest} is malformed: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Send `trace` as the startup trace of `image`; true when the supernode stored it (false: it keeps an earlier one). */
  async putTrace(image: LayerRef, trace: StartupTrace, opts: CallOptions = {}): Promise<boolean> {
    const body = (await this.#json("PUT", traceRoute(image), opts, trace)) as { stored?: unknown };
    return body.stored === true;
  }

  /** The index region of the lazy layer `layer` (unverified: check it against `indexDigest`). */
  async index(layer: LayerRef, indexDigest: string | undefined, opts: CallOptions = {}): Promise<Uint8Array> {
    const res = await this.#call("GET", indexRoute(layer, indexDigest), opts);
    return this.#bounded(res, MAX_INDEX_ANSWER, "a layer index");
  }

  /**
   * The seekable index of the ordinary layer `layer` (unverified here: the
   * caller checks that it names this blob; its spans are checked as they
   * arrive). The owner builds it on first request, reading the blob once.
   */
  async seekableIndex(layer: LayerRef, opts: CallOptions = {}): Promise<Uint8Array> {
    const res = await this.#call("GET", seekableIndexRoute(layer), opts);
    return this.#bounded(res, MAX_INDEX_ANSWER, "a seekable index");
  }

  /** Bytes `[start, end)` of the window pack of `layer`'s seekable index (unverified: each window is checked against the index). */
  async seekableWindows(layer: LayerRef, start: number, end: number, opts: CallOptions = {}): Promise<Uint8Array> {
    const res = await this.#call("GET", seekableWindowsRoute(layer), opts, undefined, { range: `bytes=${start}-${end - 1}` });
    const bytes = await this.#bounded(res, end - start, "a window pack range");
    if (bytes.length !== end - start) throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${bytes.length} bytes of the window pack for a ${end - start}-byte range`);
    return bytes;
  }

  /**
   * Tell the tracker which layers (and chunks) this peer holds (a sealed
   * `Announcement`); resolves the time to live it granted and the pace it
   * asks announces to keep (`announcePaceMs`; absent from older trackers), ms.
   */
  async announce(a: TrackerEnvelope, opts: CallOptions = {}): Promise<{ ttlMs: number; paceMs?: number }> {
    const body = (await this.#json("POST", ANNOUNCE_PATH, opts, a)) as { ttlMs?: unknown; paceMs?: unknown };
    const paceMs = Number(body.paceMs);
    return { ttlMs: Number(body.ttlMs), ...(Number.isSafeInteger(paceMs) && paceMs > 0 ? { paceMs } : {}) };
  }

  /** Tell the tracker that a peer sent the reporter bytes failing their digest (a sealed `PeerReport`); resolves whether it is banned now. */
  async report(r: TrackerEnvelope, opts: CallOptions = {}): Promise<boolean> {
    const body = await this.#json("POST", REPORT_PATH, opts, r);
    return (body as { banned?: unknown }).banned === true;
  }

  /** Peers holding (part of) `layer`, or chunk `chunk` of it, with their bitmaps decoded. */
  async peers(layer: string, opts: CallOptions & { chunk?: number } = {}): Promise<Holder[]> {
    const body = await this.#json("GET", peersRoute(layer, opts.chunk), opts);
    try {
      return parseHolders(body);
    } catch (err) {
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Start a preheat job of `image` (this supernode's share of its chunks); resolves the job id. */
  async startPreheat(req: { image: string; platform?: string }, opts: CallOptions = {}): Promise<string> {
    const body = (await this.#json("POST", PREHEAT_PATH, opts, req)) as { id?: unknown };
    if (typeof body.id !== "string") throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: preheat answer has no id`);
    return body.id;
  }

  /** The state of preheat job `id`. */
  async preheatStatus(id: string, opts: CallOptions = {}): Promise<PreheatStatus> {
    const body = await this.#json("GET", preheatJobRoute(id), opts);
    try {
      return parsePreheatStatus(body);
    } catch (err) {
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** `GET /v1/health`. */
  async health(opts: CallOptions = {}): Promise<Health> {
    return (await this.#json("GET", HEALTH_PATH, opts)) as Health;
  }

  /**
   * Bytes `[start, end)` of any blob (its whole when no range is given) from
   * the supernode's block cache, as a stream of unverified pieces: the caller
   * checks them against the blob's digest.
   */
  async blob(blob: LayerRef, opts: CallOptions & { range?: { start: number; end: number } } = {}): Promise<AsyncIterable<Uint8Array>> {
    const headers = opts.range ? { range: `bytes=${opts.range.start}-${opts.range.end - 1}` } : undefined;
    const res = await this.#call("GET", blobRoute(blob), opts, undefined, headers);
    if (!res.body) throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: blob answer has no body`);
    return res.body;
  }

  /** The digests of `blob`'s blocks, once this supernode verified the whole blob (it reads it whole the first time). */
  async blocks(blob: LayerRef, opts: CallOptions = {}): Promise<BlockList> {
    const body = await this.#json("GET", blocksRoute(blob), opts);
    try {
      return parseBlockList(body);
    } catch (err) {
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${(err as Error).message}`, { cause: err });
    }
  }

  async #json(method: string, path: string, opts: CallOptions, body?: unknown): Promise<unknown> {
    const res = await this.#call(method, path, opts, body);
    try {
      return JSON.parse((await this.#bounded(res, MAX_JSON_ANSWER, "an answer")).toString());
    } catch (err) {
      if (err instanceof SupernodeCallError) throw err;
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${method} ${path.split("?")[0]}: answer is not JSON`, { cause: err });
    }
  }

  /** All of `res`'s body, refused past `max` bytes while it streams (the rest is never read). */
  async #bounded(res: Response, max: number, what: string): Promise<Buffer> {
    const { bytes, cut } = await readResponseUpTo(res, max);
    if (cut) throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${this.url}: ${what} larger than ${max} bytes`);
    return bytes;
  }

  /** One request; a 2xx answer, else the error it stands for. A caller's abort rejects with the signal's reason. */
  async #call(method: string, path: string, opts: CallOptions, body?: unknown, extraHeaders?: Record<string, string>): Promise<Response> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (opts.credentials) headers.authorization = basicAuthorization(opts.credentials);
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${this.url} unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (res.ok) return res;
    const text = (await readResponseUpTo(res, 1000).catch(() => ({ bytes: Buffer.alloc(0) }))).bytes.toString("utf8");
    let remoteCode: ErrorCode | undefined;
    let detail = text.slice(0, 300);
    try {
      const e = JSON.parse(text) as { code?: unknown; message?: unknown };
      if (isErrorCode(e.code)) remoteCode = e.code;
      detail = `${remoteCode ?? ""}${typeof e.message === "string" ? `: ${e.message}` : ""}`;
    } catch {
      // not JSON: keep the text
    }
    const code = res.status >= 500 ? "SHOAL_ERR_SUPERNODE_UNAVAILABLE" : "SHOAL_ERR_SUPERNODE_REJECTED";
    throw new SupernodeCallError(code, `supernode ${this.url} answered HTTP ${res.status} to ${method} ${path.split("?")[0]}: ${detail}`, { status: res.status, ...(remoteCode ? { remoteCode } : {}) });
  }
}

/**
 * Read `res`'s body as consecutive pieces of `lengths`, handing each to
 * `onPiece` once complete; undefined when the body's length is not their sum.
 */
async function splitBody(res: Response, lengths: number[], onPiece: (k: number, bytes: Uint8Array) => void, url: string, signal: AbortSignal | undefined): Promise<Uint8Array[] | undefined> {
  const ends: number[] = [];
  let total = 0;
  for (const n of lengths) ends.push((total += n));
  const out: Uint8Array[] = [];
  const splitter = new RangeSplitter(ends, (k, bytes) => {
    out[k] = bytes;
    onPiece(k, bytes);
  });
  splitter.push(new Uint8Array(0), 0); // parts of no bytes at the start
  let have = 0;
  try {
    for await (const piece of (res.body ?? []) as AsyncIterable<Uint8Array>) {
      if (have + piece.length > total) {
        await res.body?.cancel().catch(() => undefined);
        return undefined;
      }
      splitter.push(piece, have);
      have += piece.length;
    }
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new SupernodeCallError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `supernode ${url}: answer cut off after ${have} of ${total} bytes: ${(err as Error).message}`, { cause: err });
  }
  return have === total ? out : undefined;
}
