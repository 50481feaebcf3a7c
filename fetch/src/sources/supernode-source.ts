/** The datacenter supernodes as a source of chunks, of layer indexes and of startup traces. */
import { chunkDigest, type LazyLayerInfo } from "@shoal/blockindex";
import type { CredentialStore, Credentials } from "@shoal/oci";
import type { LayerRef, StartupTrace, SupernodeSet } from "@shoal/swarm";
import { checkRun, runBytes, runEnds, splitRun, type ChunkSource, type FetchChunksOptions } from "../chunk-source.ts";
import type { IndexSource } from "../image.ts";
import type { SeekableIndexSource } from "../seekable.ts";
import type { RemoteLayer } from "../remote-layer.ts";
import { RangeSplitter } from "@shoal/base";

/** Longest wait for a layer index from one supernode, ms. */
const INDEX_TIMEOUT_MS = 15_000;

/** Longest wait for a seekable index from one supernode, ms: a cold one reads the whole blob first. */
const SEEKABLE_INDEX_TIMEOUT_MS = 120_000;

/** How long a credentials lookup is reused (a `docker login` shows within this), ms. */
const CREDENTIALS_TTL_MS = 10_000;

/**
 * Each chunk belongs to the supernode that ranks first for its digest (the
 * preheat split uses the same ranking); a run is split where the owner
 * changes. A supernode that is down moves its share to the next in rank
 * (see `SupernodeSet`). Indexes belong to the supernode ranked first for the
 * layer digest, which reads each from the registry once for every agent.
 */
export class SupernodeSource implements ChunkSource, IndexSource, SeekableIndexSource {
  readonly name = "supernode";
  private readonly supernodes: SupernodeSet;
  private readonly credentials: CredentialStore | undefined;
  private readonly lookups = new Map<string, { at: number; creds: Promise<Credentials | undefined> }>();

  /**
   * `credentials`: the host's registry credentials, passed with every request
   * (Basic) so that the supernode's access check lets the caller read a
   * private image's cached chunks; without them only public images are served.
   */
  constructor(components: { supernodes: SupernodeSet; credentials?: CredentialStore }) {
    this.supernodes = components.supernodes;
    this.credentials = components.credentials;
  }

  /** The call option carrying the credentials for `registry`, when there are any. */
  private async auth(registry: string): Promise<{ credentials?: Credentials }> {
    if (!this.credentials) return {};
    let hit = this.lookups.get(registry);
    if (!hit || performance.now() - hit.at > CREDENTIALS_TTL_MS) {
      hit = { at: performance.now(), creds: this.credentials.get(registry).catch(() => undefined) };
      this.lookups.set(registry, hit);
    }
    const creds = await hit.creds;
    return creds ? { credentials: creds } : {};
  }

  async fetchChunks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]> {
    checkRun(layer, first, last);
    if (layer.kind === "blocks" || layer.kind === "seekable") return this.fetchBlocks(layer, first, last, opts);
    const key = (i: number) => chunkDigest(layer.index.chunk(i));
    const parts: Array<{ first: number; last: number; owner: string | undefined }> = [];
    for (let i = first; i <= last; i++) {
      const owner = this.supernodes.ownerOf(key(i))?.url;
      const cur = parts.at(-1);
      if (cur && cur.owner === owner) cur.last = i;
      else parts.push({ first: i, last: i, owner });
    }
    const auth = await this.auth(layer.registry);
    const onChunk = opts.onChunk;
    const pieces = await Promise.all(parts.map((p) => this.supernodes.first(key(p.first), (c, signal) => c.chunks(layer, p.first, p.last, {
      ...auth, signal, ...(opts.background ? { background: true } : {}), ...(onChunk ? { onChunk: (k: number, bytes: Uint8Array) => onChunk(p.first - first + k, bytes) } : {}),
    }), { signal: opts.signal })));
    return pieces.flat();
  }

  /** Blocks `first..last` of a blob, as one byte range of the supernodes' block cache. */
  private async fetchBlocks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]> {
    const auth = await this.auth(layer.registry);
    const { start, end } = runBytes(layer, first, last);
    const onChunk = opts.onChunk;
    const bytes = await this.supernodes.first(layer.digest, async (c, signal) => {
      const parts: Uint8Array[] = [];
      const assembler = onChunk && last > first ? new RangeSplitter(runEnds(layer, first, last), onChunk) : undefined;
      let at = 0;
      for await (const p of await c.blob(layer, { ...auth, signal, range: { start, end } })) {
        assembler?.push(p, at);
        at += p.length;
        parts.push(p);
      }
      return Buffer.concat(parts);
    }, { signal: opts.signal });
    return splitRun(layer, first, last, bytes);
  }

  /** The seekable index of an ordinary layer, from its owner (which may read the whole blob first). */
  async fetchSeekableIndex(layer: LayerRef, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array }> {
    const auth = await this.auth(layer.registry);
    return { bytes: await this.supernodes.first(layer.digest, (c, signal) => c.seekableIndex(layer, { ...auth, signal }), { ...opts, tryMs: SEEKABLE_INDEX_TIMEOUT_MS }) };
  }

  /** Bytes `[start, end)` of a seekable layer's window pack, from its owner. */
  async fetchWindows(layer: LayerRef, start: number, end: number, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const auth = await this.auth(layer.registry);
    return this.supernodes.first(layer.digest, (c, signal) => c.seekableWindows(layer, start, end, { ...auth, signal }), { ...opts, tryMs: INDEX_TIMEOUT_MS });
  }

  /** The startup trace of `image` (`digest`: the manifest digest) from its owner, or undefined when it holds none (unverified: the caller checks it names its image). */
  async fetchTrace(image: LayerRef, opts: { signal?: AbortSignal } = {}): Promise<StartupTrace | undefined> {
    const auth = await this.auth(image.registry);
    return this.supernodes.first(image.digest, (c, signal) => c.trace(image, { ...auth, signal }), { ...opts, tryMs: INDEX_TIMEOUT_MS });
  }

  /** Send `trace` to the owner of `image`'s trace; true when stored (false: it keeps an earlier one). */
  async sendTrace(image: LayerRef, trace: StartupTrace, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const auth = await this.auth(image.registry);
    return this.supernodes.first(image.digest, (c, signal) => c.putTrace(image, trace, { ...auth, signal }), { ...opts, tryMs: INDEX_TIMEOUT_MS });
  }

  /** The index region of a lazy layer (unverified: the caller checks it against `info.indexDigest`). */
  async fetchIndex(layer: LayerRef, info: LazyLayerInfo, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const auth = await this.auth(layer.registry);
    return this.supernodes.first(layer.digest, (c, signal) => c.index(layer, info.indexDigest, { ...auth, signal }), { ...opts, tryMs: INDEX_TIMEOUT_MS });
  }
}
