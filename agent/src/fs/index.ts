// Public surface of the layer filesystem: layers served over FUSE as
// overlayfs lower directories, and the overlay/mount helpers around it.
export { answeredRequests, LayerFilesystem, LayerHasXattrsError, type FsCounters, type LayerFilesystemInit } from "./layer-fs.ts";
export { LayerConnections, type LayerConnectionsInit, type LayerDirectories } from "./layer-connections.ts";
export { lowerResolver, readerLayerData, type LayerData, type LayerSnapshot, type LowerFile } from "./layer-data.ts";
export { OPAQUE_XATTR, type FsNode, type LayerTree } from "./layer-tree.ts";
export {
  dirsInUse, findMount, isMountpoint, mountOverlay, readMountInfo, unmountPath, type MountInfo, type OverlayOptions,
} from "./mount.ts";
export { FuseDevice, type FuseMountInit } from "./fuse-device.ts";
export type { FuseReaderKind } from "./fuse-reader.ts";
export { InProcessMounter, type FuseMounter, type FuseTransport } from "./fuse-transport.ts";
