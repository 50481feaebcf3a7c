/**
 * The messages of the supernode API, as both sides see them: request and
 * response bodies, and the parsers that turn untrusted JSON into them (the
 * supernode parses what agents send; agents parse what the supernode
 * answers). Parsers throw `BadRequestError`.
 */
import { BadRequestError, isSha256Digest } from "@shoal/base";
import { parsePlatform, parseReference, type ImageReference, type Platform } from "@shoal/oci";
import { decodeChunkBitmap } from "./chunk-bitmap.ts";
import { MAX_PEERS_ANSWERED } from "./constants.ts";

/** One peer as agents see it. */
export interface PeerInfo {
  peerId: string;
  addrs: string[];
}

/** A peer holding (part of) a layer, as `GET /v1/peers` answers. */
export interface LayerHolder extends PeerInfo {
  /** Base64 chunk bitmap (see `chunk-bitmap.ts`) of the chunks it holds; absent: the whole layer. */
  chunks?: string;
}

/** A validated `POST /v1/announce` body. */
export interface Announcement extends PeerInfo {
  /** Layer digests the peer holds, at least partly. */
  layers: string[];
  /** Per layer of `layers`, a base64 bitmap of the chunks held; a layer without one is held whole. */
  chunks?: Record<string, string>;
}

const MAX_ADDRS = 32;
const MAX_LAYERS = 10_000;
const MAX_STRING = 512;

/** `v` when it is a non-empty string of at most `MAX_STRING` characters; else `BadRequestError` naming `what`. */
function stringField(v: unknown, what: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_STRING) throw new BadRequestError(`${what} must be a non-empty string of at most ${MAX_STRING} characters`);
  return v;
}

/** Parse an announce body (untrusted JSON); throws `BadRequestError`. */
export function parseAnnouncement(body: unknown): Announcement {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("announce: body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (v: unknown, what: string): string => stringField(v, `announce: ${what}`);
  const list = (v: unknown, what: string, max: number): unknown[] => {
    if (!Array.isArray(v) || v.length > max) throw new BadRequestError(`announce: ${what} must be an array of at most ${max} entries`);
    return v;
  };
  const peerId = str(b.peerId, "peerId");
  const addrs = list(b.addrs, "addrs", MAX_ADDRS).map((a) => str(a, "addrs[]"));
  const layers = list(b.layers, "layers", MAX_LAYERS).map((l) => {
    const d = str(l, "layers[]");
    if (!isSha256Digest(d)) throw new BadRequestError("announce: layers[] must be sha256:<hex> digests");
    return d;
  });
  let chunks: Record<string, string> | undefined;
  if (b.chunks !== undefined) {
    if (typeof b.chunks !== "object" || b.chunks === null || Array.isArray(b.chunks)) throw new BadRequestError("announce: chunks must be an object of layer digest to bitmap");
    const held = new Set(layers);
    chunks = {};
    for (const [layer, bits] of Object.entries(b.chunks as Record<string, unknown>)) {
      if (!held.has(layer)) throw new BadRequestError("announce: chunks names a layer missing from layers");
      if (typeof bits !== "string") throw new BadRequestError("announce: chunks values must be base64 bitmaps");
      decodeChunkBitmap(bits);
      chunks[layer] = bits;
    }
  }
  return { peerId, addrs, layers, ...(chunks ? { chunks } : {}) };
}

/** A validated `POST /v1/report` body: `reporter` got bytes failing their digest from `peerId`. */
export interface PeerReport {
  reporter: string;
  peerId: string;
  chunk: string;
}

/** Parse a report body (untrusted JSON); throws `BadRequestError`. */
export function parsePeerReport(body: unknown): PeerReport {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("report: body must be a JSON object");
  const b = body as Record<string, unknown>;
  const str = (v: unknown, what: string): string => stringField(v, `report: ${what}`);
  const chunk = str(b.chunk, "chunk");
  if (!isSha256Digest(chunk)) throw new BadRequestError("report: chunk must be a sha256:<hex> digest");
  const reporter = str(b.reporter, "reporter");
  const peerId = str(b.peerId, "peerId");
  if (reporter === peerId) throw new BadRequestError("report: a peer cannot report itself");
  return { reporter, peerId, chunk };
}

/** A validated `POST /v1/preheat` body. */
export interface PreheatRequest {
  image: ImageReference;
  platform?: Platform;
}

/** Parse a preheat body (untrusted JSON); throws `BadRequestError`. */
export function parsePreheatRequest(body: unknown): PreheatRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError("preheat: body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (typeof b.image !== "string" || b.image.length === 0) throw new BadRequestError("preheat: image must be a non-empty string");
  let image: ImageReference;
  try {
    image = parseReference(b.image);
  } catch (err) {
    throw new BadRequestError(`preheat: ${(err as Error).message}`, { cause: err });
  }
  if (b.platform === undefined) return { image };
  if (typeof b.platform !== "string") throw new BadRequestError("preheat: platform must be a string os/arch[/variant]");
  try {
    return { image, platform: parsePlatform(b.platform) };
  } catch (err) {
    throw new BadRequestError(`preheat: ${(err as Error).message}`, { cause: err });
  }
}

/** State of a preheat job as `GET /v1/preheat/:id` returns it. Totals count only this supernode's share. */
export interface PreheatStatus {
  state: "running" | "done" | "failed";
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  error?: { code: string; message: string };
}


/** Peers holding (part of) a layer as an agent uses them: the bitmap decoded, absent when the peer holds the whole layer. */
export interface Holder extends PeerInfo {
  bits?: Uint8Array;
}

/** Parse a `GET /v1/peers` answer (untrusted JSON) into holders; throws `BadRequestError`. */
export function parseHolders(body: unknown): Holder[] {
  // the tracker answers at most MAX_PEERS_ANSWERED agents, and the supernode itself when it is in the swarm
  if (!Array.isArray(body) || body.length > MAX_PEERS_ANSWERED + 1) throw new BadRequestError(`peers: answer must be an array of at most ${MAX_PEERS_ANSWERED + 1} holders`);
  return body.map((h: unknown) => {
    if (typeof h !== "object" || h === null) throw new BadRequestError("peers: a holder must be an object");
    const o = h as Record<string, unknown>;
    const peerId = stringField(o.peerId, "peers: peerId");
    if (!Array.isArray(o.addrs) || o.addrs.length > MAX_ADDRS) throw new BadRequestError(`peers: addrs must be an array of at most ${MAX_ADDRS} entries`);
    const addrs = o.addrs.map((a) => stringField(a, "peers: addrs[]"));
    if (o.chunks === undefined) return { peerId, addrs };
    if (typeof o.chunks !== "string") throw new BadRequestError("peers: chunks must be a base64 bitmap");
    return { peerId, addrs, bits: decodeChunkBitmap(o.chunks) };
  });
}

/** Parse a `GET /v1/preheat/ID` answer (untrusted JSON); throws `BadRequestError`. */
export function parsePreheatStatus(body: unknown): PreheatStatus {
  const o = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const counts = ["chunksDone", "chunksTotal", "bytesDone", "bytesTotal"] as const;
  if (!["running", "done", "failed"].includes(o.state as string) || counts.some((k) => !Number.isSafeInteger(o[k]) || (o[k] as number) < 0)) {
    throw new BadRequestError("preheat: status must have a state and non-negative counts");
  }
  const e = o.error as { code?: unknown; message?: unknown } | undefined;
  return {
    state: o.state as PreheatStatus["state"],
    chunksDone: o.chunksDone as number, chunksTotal: o.chunksTotal as number, bytesDone: o.bytesDone as number, bytesTotal: o.bytesTotal as number,
    ...(e ? { error: { code: String(e.code ?? "SHOAL_ERR_INTERNAL"), message: String(e.message ?? "") } } : {}),
  };
}

/** What `GET /v1/health` answers: the supernode's libp2p identity when it joined the swarm. */
export interface Health {
  ok: true;
  peerId?: string;
  addrs?: string[];
}

/**
 * A blob cut into blocks of `blockBytes` (the last may be shorter), with
 * the sha256 of each, as a supernode publishes it once the whole blob
 * matched its digest: what lets a host check a block from a peer on its own.
 */
export interface BlockList {
  size: number;
  blockBytes: number;
  blocks: string[];
}

/** Parse a `GET /v1/blocks/...` answer (untrusted JSON); throws `BadRequestError`. */
export function parseBlockList(body: unknown): BlockList {
  const o = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  const { size, blockBytes, blocks } = o;
  if (!Number.isSafeInteger(size) || (size as number) < 0 || !Number.isSafeInteger(blockBytes) || (blockBytes as number) <= 0 || !Array.isArray(blocks)) {
    throw new BadRequestError("blocks: answer must have a size, a blockBytes and a list of blocks");
  }
  const expected = Math.ceil((size as number) / (blockBytes as number));
  if (blocks.length !== expected || blocks.some((b) => typeof b !== "string" || !isSha256Digest(b))) {
    throw new BadRequestError(`blocks: expected ${expected} sha256 digests`);
  }
  return { size: size as number, blockBytes: blockBytes as number, blocks: blocks as string[] };
}
