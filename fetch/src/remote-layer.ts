/** A lazy layer as the read path sees it. */
import type { LayerIndex } from "@shoal/blockindex";
import type { WindowLoader } from "./seekable.ts";

/** A lazy layer the agent reads: where it lives and its index. */
export interface RemoteLayer {
  /** Digest of the lazy blob. */
  digest: string;
  /** Registry host as in references (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  repository: string;
  /** The layer's index, verified against the manifest's annotation. */
  index: LayerIndex;
  /** The index's digest (the manifest annotation; a seekable index: the digest of its encoding), when the layer was opened from a manifest. */
  indexDigest?: string;
  /** Digest of the layer it was converted from (from its annotations), when recorded. */
  sourceDigest?: string;
  /**
   * `blocks`: not a lazy layer but any blob seen as its supernode blocks
   * (`index` holds the block digests, no entries; "uncompressed" bytes are
   * the blob's own). Supernodes serve it from their block cache, not as
   * chunks of an index. `seekable`: an ordinary gzip or tar layer, read
   * through a seekable index (`index.seekable`, chunks are spans of the
   * blob); supernodes serve its spans from their block cache.
   */
  kind?: "blocks" | "seekable";
  /** A seekable layer's checkpoint windows, loaded one at a time on first need (see `loadWindow`); absent: derived from the data before each span. */
  windows?: WindowLoader;
}
