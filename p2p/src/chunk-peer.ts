// ChunkPeer: a libp2p node (TCP, noise, yamux, pnet) that serves verified chunks from the local
// store to other cluster members and fetches chunks from them.
import { TokenBucket, AbortedError, InvalidArgumentError, LruMap, ShoalError, toShoalError } from "@shoal/base";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import type { Libp2p, PrivateKey, Stream } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import { preSharedKey } from "@libp2p/pnet";
import { tcp } from "@libp2p/tcp";
import { lpStream } from "@libp2p/utils";
import { multiaddr } from "@multiformats/multiaddr";
import type { Multiaddr } from "@multiformats/multiaddr";
import { createLibp2p } from "libp2p";
import {
  CHUNK_PROTOCOL,
  CHUNK_PROTOCOL_V1,
  DEFAULT_LISTEN,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CHUNK_BYTES,
  DEFAULT_MAX_UPLOADS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_UPLOAD_BURST,
  DEFAULT_UPLOAD_RATE,
  UPLOAD_FRAME_BYTES,
} from "./constants.ts";
import { PeerBusyError, PeerNotFoundError, PeerProtocolError, PeerUnavailableError, SwarmKeyError } from "./errors.ts";
import { loadOrCreatePeerKey } from "./peer-key.ts";
import { MAX_BODY_FRAME_BYTES, MAX_CHUNKS_PER_PEER_REQUEST, MAX_REQUEST_BYTES, Status, decodeHeader, encodeHeader, isChunkDigest, parseRequest } from "./protocol.ts";
import type { StatusCode } from "./protocol.ts";
import { formatSwarmKey, toSwarmKey } from "./swarm-key.ts";
import type { SwarmKey } from "./swarm-key.ts";

/**
 * Where served chunks come from: the agent's chunk store. It must return only chunks that were
 * verified against their digest, and undefined for chunks it does not hold.
 */
export interface ChunkProvider {
  readCompressed(digest: string, options?: { signal?: AbortSignal }): Promise<Uint8Array | undefined>;
}

/** Minimal structured logger; a pino `Logger` fits. */
export interface P2pLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

/** Dependencies of a ChunkPeer. */
export interface ChunkPeerComponents {
  provider: ChunkProvider;
  logger?: P2pLogger;
}

/** Settings of a ChunkPeer; defaults in constants.ts. */
export interface ChunkPeerInit {
  /** Cluster pre-shared key: parsed, 32 raw bytes, or swarm.key file bytes. Required unless `insecureNoSwarmKey`. */
  swarmKey?: SwarmKey | Uint8Array;
  /** Run without a private network (anyone may connect). For tests only. */
  insecureNoSwarmKey?: boolean;
  /** Listen multiaddrs; default loopback on an ephemeral port. */
  listen?: string[];
  /** Upload limit in bytes/s shared by all uploads; 0 or Infinity for none. */
  uploadRate?: number;
  /** Token-bucket burst in bytes (default one 64 KiB frame). */
  uploadBurst?: number;
  /** Concurrent uploads; requests beyond it are answered "busy" at once. */
  maxUploads?: number;
  /** File holding the node's private key: created on first start, reused after, so the peer id is stable. */
  keyFile?: string;
  /** Explicit private key (wins over keyFile). Without either, each start gets a fresh identity. */
  privateKey?: PrivateKey;
  /** Largest chunk body fetchChunk accepts. */
  maxChunkBytes?: number;
  /** Server-side wait for the request frame, in ms. */
  requestTimeoutMs?: number;
  /** Limit on one connection handshake (dialing one address, or accepting), in ms. */
  handshakeTimeoutMs?: number;
}

/** A peer to fetch from: its id and dialable multiaddrs (with or without the trailing /p2p/<id>). */
export interface PeerAddress {
  peerId: string;
  addrs: string[];
}

/** Upload counters of a ChunkPeer since construction. */
export interface ChunkPeerStats {
  /** Body bytes sent to other peers. */
  bytesUploaded: number;
  /** Requests answered with a whole chunk. */
  uploadsServed: number;
  /** Requests answered "busy" because maxUploads uploads were running. */
  uploadsRefused: number;
  /** Requests for chunks the provider does not hold. */
  uploadsNotFound: number;
  /** Uploads currently running. */
  uploadsActive: number;
}

/** Chunk bytes exchanged with one peer since start. */
export interface PeerTraffic {
  peerId: string;
  /** Chunk bytes this node sent it. */
  bytesUp: number;
  /** Chunk bytes it sent this node (before verification). */
  bytesDown: number;
  /** When bytes last moved either way, ms since the epoch. */
  last: number;
}

/** Peers whose traffic is remembered; the least recently active go first. */
const MAX_TRAFFIC_PEERS = 1024;

/**
 * A libp2p node serving `/shoal/chunk/1.0.0` from its provider and fetching chunks from others.
 * Only nodes sharing the swarm key can complete a connection. Call start() before use and stop()
 * when done; both are idempotent.
 */
export class ChunkPeer {
  private readonly provider: ChunkProvider;
  private readonly logger: P2pLogger | undefined;
  private readonly swarmKey: SwarmKey | undefined;
  private readonly listen: string[];
  private readonly maxUploads: number;
  private readonly keyFile: string | undefined;
  private readonly privateKey: PrivateKey | undefined;
  private readonly maxChunkBytes: number;
  private readonly requestTimeoutMs: number;
  private readonly handshakeTimeoutMs: number;
  private readonly bucket: TokenBucket;
  private readonly counters = { bytesUploaded: 0, uploadsServed: 0, uploadsRefused: 0, uploadsNotFound: 0 };
  private readonly traffic = new LruMap<string, PeerTraffic>({ maxEntries: MAX_TRAFFIC_PEERS });
  private active = 0;
  private node: Libp2p | undefined;
  private stopController = new AbortController();

  constructor(components: ChunkPeerComponents, init: ChunkPeerInit = {}) {
    this.provider = components.provider;
    this.logger = components.logger;
    if (init.swarmKey !== undefined) this.swarmKey = toSwarmKey(init.swarmKey);
    else if (!init.insecureNoSwarmKey) throw new SwarmKeyError("a swarm key is required (or set insecureNoSwarmKey)");
    this.listen = init.listen ?? DEFAULT_LISTEN;
    this.maxUploads = init.maxUploads ?? DEFAULT_MAX_UPLOADS;
    this.keyFile = init.keyFile;
    this.privateKey = init.privateKey;
    this.maxChunkBytes = init.maxChunkBytes ?? DEFAULT_MAX_CHUNK_BYTES;
    this.requestTimeoutMs = init.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.handshakeTimeoutMs = init.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
    this.bucket = new TokenBucket({ rate: init.uploadRate ?? DEFAULT_UPLOAD_RATE, burst: init.uploadBurst ?? DEFAULT_UPLOAD_BURST });
  }

  /** Creates the libp2p node, listens and registers the chunk protocol. Idempotent. */
  async start(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.node) return;
    const privateKey = this.privateKey ?? (this.keyFile ? await loadOrCreatePeerKey(this.keyFile, options) : undefined);
    options.signal?.throwIfAborted();
    const node = await createLibp2p({
      ...(privateKey ? { privateKey } : {}),
      start: false,
      addresses: { listen: this.listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { addressDialTimeout: this.handshakeTimeoutMs, inboundUpgradeTimeout: this.handshakeTimeoutMs },
      ...(this.swarmKey ? { connectionProtector: preSharedKey({ psk: new TextEncoder().encode(formatSwarmKey(this.swarmKey)) }) } : {}),
    });
    this.stopController = new AbortController();
    await node.handle([CHUNK_PROTOCOL, CHUNK_PROTOCOL_V1], (stream, connection) => this.serve(stream, connection.remotePeer.toString()), { maxInboundStreams: Math.max(32, this.maxUploads * 4) });
    await node.start();
    this.node = node;
  }

  /** Aborts running uploads and stops the node. Idempotent. */
  async stop(): Promise<void> {
    const node = this.node;
    if (!node) return;
    this.node = undefined;
    this.stopController.abort(new AbortedError("chunk peer stopped"));
    await node.stop();
  }

  /** This node's peer id (base58btc string). Throws if not started. */
  get peerId(): string {
    return this.started().peerId.toString();
  }

  /** Listening multiaddrs, each ending in /p2p/<peerId>. Throws if not started. */
  get addrs(): string[] {
    const node = this.started();
    const id = node.peerId.toString();
    return node.getMultiaddrs().map((ma) => withPeerId(ma, id).toString());
  }

  /** Number of peers with an open connection to this node. 0 when stopped. */
  /** Most chunks one `fetchChunks` may ask for. */
  get maxChunksPerRequest(): number {
    return MAX_CHUNKS_PER_PEER_REQUEST;
  }

  connectedPeers(): number {
    return this.node?.getPeers().length ?? 0;
  }

  /** Snapshot of the upload counters. */
  stats(): ChunkPeerStats {
    return { ...this.counters, uploadsActive: this.active };
  }

  /** Bytes exchanged with each peer (at most the last 1,024 active), most recently active first. */
  peerTraffic(): PeerTraffic[] {
    return [...this.traffic.values()].reverse().map((t) => ({ ...t }));
  }

  private count(peerId: string, up: number, down: number): void {
    const t = this.traffic.get(peerId) ?? { peerId, bytesUp: 0, bytesDown: 0, last: 0 };
    t.bytesUp += up;
    t.bytesDown += down;
    t.last = Date.now();
    this.traffic.set(peerId, t);
  }

  /**
   * Fetches one chunk from `peer`, dialing it if not already connected. The bytes are NOT
   * verified: the caller must check them against its index and drop a peer that lies.
   * Throws PeerNotFoundError (peer lacks the chunk), PeerBusyError (peer at its upload cap),
   * PeerUnavailableError (dial/handshake failure, e.g. another swarm key; stream broken; or the
   * signal fired with a TimeoutError), PeerProtocolError (malformed or oversize response).
   * An abort that is not a timeout rejects with the signal's reason. A digest not of the form
   * `sha256:<64 hex>` throws TypeError.
   */
  async fetchChunk(peer: PeerAddress, digest: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const [bytes] = await this.fetchChunks(peer, [digest], options);
    if (!bytes) throw new PeerNotFoundError(peer.peerId, digest);
    return bytes;
  }

  /**
   * Fetches several chunks from `peer` in one request (one stream): the bytes of each, in
   * order, or undefined for a chunk the peer does not hold. Same errors and caveats as
   * fetchChunk (the bytes are NOT verified), except that a missing chunk is undefined rather
   * than PeerNotFoundError. At most MAX_CHUNKS_PER_PEER_REQUEST digests (else TypeError).
   */
  async fetchChunks(peer: PeerAddress, digests: string[], options: { signal?: AbortSignal } = {}): Promise<Array<Uint8Array | undefined>> {
    if (digests.length === 0 || digests.length > MAX_CHUNKS_PER_PEER_REQUEST) throw new InvalidArgumentError(`ask for 1 to ${MAX_CHUNKS_PER_PEER_REQUEST} chunks at once, not ${digests.length}`);
    for (const digest of digests) if (!isChunkDigest(digest)) throw new InvalidArgumentError(`not a chunk digest: ${digest}`);
    const node = this.started();
    const { signal } = options;
    signal?.throwIfAborted();
    let stream: Stream;
    try {
      const target = peer.addrs.length > 0 ? peer.addrs.map((a) => withPeerId(multiaddr(a), peer.peerId)) : peerIdFromString(peer.peerId);
      stream = await node.dialProtocol(target, CHUNK_PROTOCOL, { signal });
    } catch (err) {
      throw failure(peer.peerId, "dial failed", err, signal);
    }
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_BODY_FRAME_BYTES });
      await lp.write(new TextEncoder().encode(digests.join("\n")), { signal });
      const out: Array<Uint8Array | undefined> = [];
      for (const digest of digests) {
        const header = decodeHeader((await lp.read({ signal })).subarray());
        if (!header) throw new PeerProtocolError(peer.peerId, "malformed response header");
        if (header.status === Status.NOT_FOUND) {
          out.push(undefined);
          continue;
        }
        if (header.status === Status.BUSY) throw new PeerBusyError(peer.peerId);
        if (header.status !== Status.OK) throw new PeerProtocolError(peer.peerId, `request for ${digest} refused with status ${header.status}`);
        if (header.length > this.maxChunkBytes) {
          throw new PeerProtocolError(peer.peerId, `chunk of ${header.length} bytes exceeds limit ${this.maxChunkBytes}`);
        }
        const body = new Uint8Array(header.length);
        let filled = 0;
        while (filled < header.length) {
          const frame = (await lp.read({ signal })).subarray();
          if (frame.byteLength > header.length - filled) throw new PeerProtocolError(peer.peerId, "body longer than announced");
          body.set(frame, filled);
          filled += frame.byteLength;
        }
        out.push(body);
        this.count(peer.peerId, 0, body.byteLength);
      }
      await stream.close({ signal }).catch(() => stream.abort(new AbortedError("close failed")));
      return out;
    } catch (err) {
      stream.abort(toShoalError(err));
      if (err instanceof PeerBusyError || err instanceof PeerProtocolError) throw err;
      throw failure(peer.peerId, "transfer failed", err, signal);
    }
  }

  private started(): Libp2p {
    if (!this.node) throw new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "ChunkPeer is not started");
    return this.node;
  }

  private async serve(stream: Stream, remote: string): Promise<void> {
    const stopSignal = this.stopController.signal;
    const lp = lpStream(stream, { maxDataLength: MAX_REQUEST_BYTES });
    let uploading = false;
    try {
      const reqSignal = AbortSignal.any([stopSignal, AbortSignal.timeout(this.requestTimeoutMs)]);
      const digests = parseRequest(new TextDecoder().decode((await lp.read({ signal: reqSignal })).subarray()));
      if (!digests) return await this.reply(lp, stream, Status.BAD_REQUEST);
      if (this.active >= this.maxUploads) {
        this.counters.uploadsRefused++;
        return await this.reply(lp, stream, Status.BUSY);
      }
      this.active++;
      uploading = true;
      for (const digest of digests) {
        let data: Uint8Array | undefined;
        try {
          data = await this.provider.readCompressed(digest, { signal: stopSignal });
        } catch (err) {
          this.logger?.warn({ err, digest }, "chunk provider failed");
          return await this.reply(lp, stream, Status.ERROR);
        }
        if (!data) {
          this.counters.uploadsNotFound++;
          await lp.write(encodeHeader(Status.NOT_FOUND), { signal: stopSignal });
          continue;
        }
        await lp.write(encodeHeader(Status.OK, data.byteLength), { signal: stopSignal });
        for (let off = 0; off < data.byteLength; off += UPLOAD_FRAME_BYTES) {
          const frame = data.subarray(off, Math.min(off + UPLOAD_FRAME_BYTES, data.byteLength));
          await this.bucket.take(frame.byteLength, { signal: stopSignal });
          await lp.write(frame, { signal: stopSignal });
          this.counters.bytesUploaded += frame.byteLength;
        }
        this.count(remote, data.byteLength, 0);
        this.counters.uploadsServed++;
      }
      await stream.close({ signal: stopSignal });
    } catch (err) {
      this.logger?.debug({ err, remote: stream.id }, "chunk upload aborted");
      stream.abort(toShoalError(err));
    } finally {
      if (uploading) this.active--;
    }
  }

  private async reply(lp: { write(data: Uint8Array, options?: { signal?: AbortSignal }): Promise<void> }, stream: Stream, status: StatusCode): Promise<void> {
    await lp.write(encodeHeader(status), { signal: this.stopController.signal });
    await stream.close({ signal: this.stopController.signal });
  }
}

function withPeerId(ma: Multiaddr, peerId: string): Multiaddr {
  return ma.getComponents().some((c) => c.name === "p2p") ? ma : ma.encapsulate(`/p2p/${peerId}`);
}

function failure(peerId: string, what: string, err: unknown, signal: AbortSignal | undefined): Error {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof Error && reason.name === "TimeoutError") return new PeerUnavailableError(peerId, `${what}: timed out`, { cause: reason });
    return reason instanceof Error ? reason : new AbortedError(String(reason));
  }
  return new PeerUnavailableError(peerId, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
