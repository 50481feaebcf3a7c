export * from "./registry.ts";
// Lazy-layer test fixtures: tar writer, OCI layouts, fixture images, umoci/skopeo, tree snapshots.
export * from "./tar-writer.ts";
export { BLOCK, paxRecord } from "./tar-header.ts";
export * from "./prng.ts";
export * from "./image-layout.ts";
export * from "./boundaries.ts";
export * from "./boundary-layer.ts";
export type { XattrChoice } from "./edge-layers.ts";
export * from "./fixtures.ts";
export * from "./model.ts";
export * from "./push.ts";
export * from "./http-push.ts";
export * from "./tree.ts";
export * from "./xattr.ts";
export * from "./exec.ts";
export * from "./netns.ts";
export * from "./realistic-image.ts";
export * from "./busybox-image.ts";
