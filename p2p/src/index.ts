// Public surface of @shoal/p2p: the cluster's private libp2p swarm for exchanging verified chunks.
export { ChunkPeer, type ChunkPeerComponents, type ChunkPeerInit, type ChunkPeerStats, type ChunkProvider, type P2pLogger, type PeerAddress, type PeerTraffic } from "./chunk-peer.ts";
export { SwarmKeyError, PeerNotFoundError, PeerBusyError, PeerUnavailableError, PeerProtocolError, PeerKeyError } from "./errors.ts";
export { parseSwarmKey, formatSwarmKey, generateSwarmKey, readSwarmKey, toSwarmKey, SWARM_KEY_BYTES, type SwarmKey } from "./swarm-key.ts";
export { loadOrCreatePeerKey } from "./peer-key.ts";
export { Status, isChunkDigest, parseRequest, encodeHeader, decodeHeader, MAX_BODY_FRAME_BYTES, MAX_CHUNKS_PER_PEER_REQUEST, MAX_REQUEST_BYTES, type StatusCode } from "./protocol.ts";
export * from "./constants.ts";
