import type { Chunk, ChunkSource } from "@shoal/blockindex";
import type { RegistryClient } from "@shoal/oci";

/** Counters of what a source fetched. */
export interface FetchStats {
  requests: number;
  bytes: number;
}

/**
 * Chunks of one blob fetched from the origin registry by HTTP range
 * requests. Bytes are not verified here; `LayerReader` verifies them.
 */
export class RegistryChunkSource implements ChunkSource {
  readonly stats: FetchStats;
  private readonly client: RegistryClient;
  private readonly repository: string;
  private readonly digest: string;

  constructor(components: { client: RegistryClient; stats?: FetchStats }, init: { repository: string; digest: string }) {
    this.client = components.client;
    this.stats = components.stats ?? { requests: 0, bytes: 0 };
    this.repository = init.repository;
    this.digest = init.digest;
  }

  async fetchChunk(chunk: Chunk, opts: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const bytes = await this.client.getBlobRange(this.repository, this.digest, chunk.offset, chunk.length, opts);
    this.stats.requests++;
    this.stats.bytes += bytes.length;
    return bytes;
  }
}
