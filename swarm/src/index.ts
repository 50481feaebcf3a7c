// Public surface of @shoal/swarm: the supernode API as both sides see it.
export * from "./constants.ts";
export { announcePaceMs } from "./announce-pace.ts";
export * from "./routes.ts";
export { parseLayerPath, layerPath, layerKey, assertRegistryName, type LayerRef } from "./layer-ref.ts";
export {
  parseAnnouncement, parsePeerReport, parsePreheatRequest, parseHolders, parsePreheatStatus, parseBlockList,
  type BlockList, type PeerInfo, type LayerHolder, type Holder, type Announcement, type PeerReport, type PreheatRequest, type PreheatStatus, type Health,
} from "./messages.ts";
export { chunkHolding, encodeChunkBitmap, decodeChunkBitmap, bitmapHas, bitmapCount, base64BitmapHas, base64BitmapCount, MAX_BITMAP_BYTES } from "./chunk-bitmap.ts";
export { rankSupernodes, ownerOf, normalizeSupernodeUrl } from "./rendezvous.ts";
export { parseBasicAuth, basicAuthorization } from "./credentials.ts";
export { SupernodeClient, SupernodeCallError, type CallOptions } from "./client.ts";
export { SupernodeSet } from "./supernode-set.ts";
export { PEERS_TIMEOUT_MS, TrackerClient, type LayerHolding } from "./tracker-client.ts";
export {
  sealTrackerMessage, openTrackerMessage, trackerMembershipKey, ed25519PeerId, NotSwarmMemberError, TRACKER_MAX_SKEW_MS,
  type TrackerSigner, type TrackerEnvelope, type TrackerMessageKind,
} from "./tracker-auth.ts";
export { preheat, type PreheatOptions, type PreheatProgress } from "./preheat-client.ts";
export { parseStartupTrace, TraceRecorder, MAX_TRACE_BYTES, MAX_TRACE_LAYERS, MAX_TRACE_RANGES, type StartupTrace } from "./startup-trace.ts";
