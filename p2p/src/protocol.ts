// Wire format of /shoal/chunk/1.1.0 (1.0.0 is the same with one digest per request).
// Every frame is unsigned-varint length-prefixed.
//   request:  one frame holding 1..MAX_CHUNKS_PER_PEER_REQUEST chunk digests, UTF-8
//             `sha256:<64 lower-case hex>`, separated by "\n"
//   response: per digest, in order: one header frame [status u8] + (status OK only)
//             [body length u32 big-endian], then, for OK, body frames of at most
//             MAX_BODY_FRAME_BYTES whose sizes sum to the length. A request refused as a
//             whole (BUSY, BAD_REQUEST) gets that one header only.
// One request per stream; the server closes its side after the response. Asking for a run
// of chunks in one request saves a stream (and its protocol negotiation) per chunk.

/** Response status codes. */
export const Status = {
  OK: 0,
  NOT_FOUND: 1,
  BUSY: 2,
  BAD_REQUEST: 3,
  ERROR: 4,
} as const;
/** One of the Status values. */
export type StatusCode = (typeof Status)[keyof typeof Status];

/** Largest body frame a client accepts; servers send UPLOAD_FRAME_BYTES frames. */
export const MAX_BODY_FRAME_BYTES = 1024 * 1024;
/** Most digests in one request. */
export const MAX_CHUNKS_PER_PEER_REQUEST = 32;
/** Largest request frame a server accepts. */
export const MAX_REQUEST_BYTES = MAX_CHUNKS_PER_PEER_REQUEST * 72;

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** True for a well-formed `sha256:<64 lower-case hex>` digest, the only form the protocol carries. */
export function isChunkDigest(digest: string): boolean {
  return DIGEST_RE.test(digest);
}

/** The digests of a request frame, or undefined when it is not 1..MAX_CHUNKS_PER_PEER_REQUEST well-formed digests. */
export function parseRequest(text: string): string[] | undefined {
  const digests = text.split("\n");
  if (digests.length > MAX_CHUNKS_PER_PEER_REQUEST || !digests.every(isChunkDigest)) return undefined;
  return digests;
}

/** Encodes a response header; `length` is required (and only written) for Status.OK. */
export function encodeHeader(status: StatusCode, length = 0): Uint8Array {
  if (status !== Status.OK) return Uint8Array.of(status);
  const buf = new Uint8Array(5);
  buf[0] = status;
  new DataView(buf.buffer).setUint32(1, length);
  return buf;
}

/** Decodes a response header; returns undefined if malformed (unknown status or wrong size). */
export function decodeHeader(buf: Uint8Array): { status: StatusCode; length: number } | undefined {
  const status = buf[0];
  if (status === Status.OK) {
    if (buf.byteLength !== 5) return undefined;
    return { status, length: new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(1) };
  }
  if (buf.byteLength !== 1 || status === undefined || status > Status.ERROR) return undefined;
  return { status: status as StatusCode, length: 0 };
}
