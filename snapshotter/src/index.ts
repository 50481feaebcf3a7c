// Public surface of @shoal/snapshotter: containerd's snapshots API over ordinary and remote (lazy) snapshots.
export { Snapshotter, type Mount, type SnapshotInfo, type RemoteLayers, type MountTable, type SnapshotterInit } from "./snapshotter.ts";
export { SnapshotRecords, type SnapshotRecord, type SnapshotKind, type RemoteLayerRecord, type RecordDb } from "./records.ts";
export { parseLabels, TARGET_LABEL, CRI_IMAGE_REF, CRI_LAYER_DIGEST, CRI_MANIFEST_DIGEST, CRI_IMAGE_LAYERS, MAX_LABEL_BYTES, type SnapshotLabels, type CriLayer } from "./labels.ts";
export { parseFilter, parseFilters, matches, type Filter, type Selector } from "./filters.ts";
export { serveSnapshots, snapshotsHandlers, snapshotsService, snapshotsPackage, type SnapshotsServer } from "./grpc-server.ts";
export { diskUsage } from "./usage.ts";
export { SnapshotsClient, SnapshotsCallError } from "./client.ts";
export { CriImages, CriCallError, type CriAuth } from "./cri-client.ts";
