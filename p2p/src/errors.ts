import { ShoalError } from "@shoal/base";
// Typed errors of @shoal/p2p. Each has a stable `code`; callers branch on the class or the code.

/** A swarm key file or value is malformed (code `SHOAL_ERR_SWARM_KEY`). */
export class SwarmKeyError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_SWARM_KEY", message, options);
  }
}

/** The peer answered that it does not hold the chunk (code `SHOAL_ERR_PEER_NOT_FOUND`). */
export class PeerNotFoundError extends ShoalError {
  readonly peerId: string;
  readonly digest: string;
  constructor(peerId: string, digest: string) {
    super("SHOAL_ERR_PEER_NOT_FOUND", `peer ${peerId} does not hold ${digest}`);
    this.peerId = peerId;
    this.digest = digest;
  }
}

/** The peer is at its concurrent-upload cap; try another peer or later (code `SHOAL_ERR_PEER_BUSY`). */
export class PeerBusyError extends ShoalError {
  readonly peerId: string;
  constructor(peerId: string) {
    super("SHOAL_ERR_PEER_BUSY", `peer ${peerId} is busy`);
    this.peerId = peerId;
  }
}

/**
 * The peer could not be reached or the transfer broke off: dial failure, handshake failure (e.g. a
 * different swarm key), stream reset, or the caller's signal timed out (code `SHOAL_ERR_PEER_UNAVAILABLE`).
 */
export class PeerUnavailableError extends ShoalError {
  readonly peerId: string;
  constructor(peerId: string, message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_PEER_UNAVAILABLE", `peer ${peerId}: ${message}`, options);
    this.peerId = peerId;
  }
}

/** The peer broke the chunk protocol: bad status, oversize or truncated body (code `SHOAL_ERR_PEER_PROTOCOL`). */
export class PeerProtocolError extends ShoalError {
  readonly peerId: string;
  constructor(peerId: string, message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_PEER_PROTOCOL", `peer ${peerId}: ${message}`, options);
    this.peerId = peerId;
  }
}

/** A peer key file exists but cannot be decoded (code `SHOAL_ERR_PEER_KEY`). */
export class PeerKeyError extends ShoalError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("SHOAL_ERR_PEER_KEY", message, options);
  }
}
