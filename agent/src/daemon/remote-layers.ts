/**
 * The snapshotter's lazy layers, from the agent: a remote snapshot's layer
 * is found (by CRI's labels, else by its index digest in the catalog of
 * images pulled before), loaded with every index of its image in one go,
 * and mounted through `ActiveImages`, so that prefetch, the startup order,
 * peers and supernodes work for it as for `shoal mount`.
 */
import { randomUUID } from "node:crypto";
import { ShoalError } from "@shoal/base";
import { chunkDigest } from "@shoal/blockindex";
import { parseReference } from "@shoal/oci";
import type { RemoteLayerRecord, RemoteLayers, SnapshotLabels } from "@shoal/snapshotter";
import type { ActiveImages } from "./active-images.ts";
import { chainIds } from "./active-images.ts";
import type { CatalogImage, ImageCatalog } from "./image-catalog.ts";

/** Whether the store holds a chunk, inflated or not, and how many bytes a chunk takes there. */
export interface HeldChunks {
  has(digest: string): boolean;
  hasRaw(digest: string): boolean;
}

/** See the module comment. */
export class AgentRemoteLayers implements RemoteLayers {
  readonly #catalog: ImageCatalog;
  readonly #images: ActiveImages;
  readonly #store: HeldChunks;

  readonly #ordinary: boolean;

  /** `ordinary`: claim ordinary layers too (found by CRI's labels, read through seekable indexes); only worth it with supernodes to build them. */
  constructor(components: { catalog: ImageCatalog; images: ActiveImages; store: HeldChunks }, init: { ordinary?: boolean } = {}) {
    this.#ordinary = init.ordinary === true;
    this.#catalog = components.catalog;
    this.#images = components.images;
    this.#store = components.store;
  }

  async acquire(labels: SnapshotLabels, _below: unknown, opts: { signal?: AbortSignal } = {}): Promise<RemoteLayerRecord> {
    const lazy = labels.lazy;
    // an ordinary layer is found by CRI's labels alone, and read through its seekable index
    if (!lazy && !(labels.cri && this.#ordinary)) throw new ShoalError("SHOAL_ERR_NOT_CONVERTED", "the layer carries no shoal labels (ordinary layers are claimed only with CRI labels and supernodes to index them)");
    const { img, position } = await this.#find(labels, opts);
    const slot = img.slots[position];
    if (!slot) throw new ShoalError("SHOAL_ERR_NOT_CONVERTED", `layer ${position} of ${img.ref.toString()} is not lazy in its manifest`);
    if (lazy && slot.indexDigest !== lazy.indexDigest) {
      throw new ShoalError("SHOAL_ERR_DIGEST_MISMATCH", `the labels name index ${lazy.indexDigest}, but layer ${position} of ${img.ref.toString()} has ${slot.indexDigest}`);
    }
    const user = `snapshot:${randomUUID()}`;
    await this.#images.use(img, user, position);
    return { dirId: chainIds(img.digests)[position]!, ref: `${img.ref.registry}/${img.ref.repository}@${img.digest}`, image: img.digest, position, digest: slot.digest, user };
  }

  /** The image and position of the layer `labels` name: by CRI's labels, else by the index digest in the catalog. */
  async #find(labels: SnapshotLabels, opts: { signal?: AbortSignal }): Promise<{ img: CatalogImage; position: number }> {
    if (labels.cri) {
      const ref = parseReference(labels.cri.imageRef);
      const text = labels.cri.manifestDigest ? `${ref.registry}/${ref.repository}@${labels.cri.manifestDigest}` : ref.toString();
      const img = await this.#catalog.load(text, { partial: true, seekable: this.#ordinary, ...(opts.signal ? { signal: opts.signal } : {}) });
      const position = img.digests.indexOf(labels.cri.layerDigest);
      if (position < 0) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `layer ${labels.cri.layerDigest} is not in ${text}`);
      return { img, position };
    }
    const at = await this.#catalog.findLayer(labels.lazy!.indexDigest);
    if (!at) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no image pulled here has the lazy layer of index ${labels.lazy!.indexDigest} (pull it with shoal pull, or through CRI, whose labels name it)`);
    const ref = parseReference(at.ref);
    const img = await this.#catalog.load(`${ref.registry}/${ref.repository}@${at.digest}`, { partial: true, offline: true });
    return { img, position: at.position };
  }

  async restore(r: RemoteLayerRecord): Promise<void> {
    const img = await this.#catalog.load(r.ref, { partial: true, offline: true, seekable: this.#ordinary });
    // before the FUSE connections serve: block-mode layers come up once they do
    await this.#images.use(img, r.user, r.position, { wait: false });
  }

  release(r: RemoteLayerRecord): void {
    this.#images.release(r.image, r.user);
  }

  dir(r: RemoteLayerRecord): string | undefined {
    return this.#images.dir(r.dirId);
  }

  usage(r: RemoteLayerRecord): { size: number; inodes: number } {
    const layer = this.#images.image(r.image)?.slots[r.position];
    if (!layer) return { size: 0, inodes: 0 };
    let size = 0;
    for (let i = 0; i < layer.index.chunkCount; i++) {
      const c = layer.index.chunk(i);
      const d = chunkDigest(c);
      if (!this.#store.has(d)) continue;
      size += c.length + (this.#store.hasRaw(d) ? c.uncompressedLength : 0);
    }
    return { size, inodes: layer.index.entries.length };
  }
}
