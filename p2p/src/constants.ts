// Defaults for @shoal/p2p. Every value here can be overridden through a constructor's `init`.
import { MAX_CHUNK_SIZE } from "@shoal/blockindex";

/** Protocol id of the chunk exchange (one request of one or more chunks, one response per stream). */
export const CHUNK_PROTOCOL = "/shoal/chunk/1.1.0";

/** The previous protocol id (one chunk per request), still served. */
export const CHUNK_PROTOCOL_V1 = "/shoal/chunk/1.0.0";

/** Default listen address: loopback, ephemeral port. */
export const DEFAULT_LISTEN = ["/ip4/127.0.0.1/tcp/0"];

/** Default upload rate limit in bytes per second, shared by all uploads of one peer (32 MiB/s). */
export const DEFAULT_UPLOAD_RATE = 32 * 1024 * 1024;

/** Default cap on concurrent uploads; further requests are answered "busy" at once. */
export const DEFAULT_MAX_UPLOADS = 8;

/**
 * Size of the body frames an upload is cut into; the rate limiter meters each frame. Just
 * under 64 KiB so that a frame with its length prefix and yamux header fits in one noise
 * message (at most 65,519 bytes of plaintext): a 64 KiB frame took two, the second a tiny one.
 */
export const UPLOAD_FRAME_BYTES = 64 * 1024 - 128;

/** Default token-bucket burst in bytes: one frame, so the limit holds from the first bytes. */
export const DEFAULT_UPLOAD_BURST = UPLOAD_FRAME_BYTES;

/** Largest chunk body a client accepts: a compressed chunk may exceed MAX_CHUNK_SIZE by gzip overhead. */
export const DEFAULT_MAX_CHUNK_BYTES = MAX_CHUNK_SIZE + 1024 * 1024;

/** How long a server waits for a request frame on a freshly opened stream, in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/**
 * How long one connection attempt (TCP connect + pnet + noise + yamux) may take, in either
 * direction, in milliseconds. A peer with another swarm key can stall a handshake until then.
 */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5_000;
