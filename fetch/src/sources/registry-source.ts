/** The origin registry as a chunk source: one HTTP range request per run. */
import type { RegistryClients } from "@shoal/oci";
import { checkRun, runBytes, runEnds, splitRun, type ChunkSource, type FetchChunksOptions } from "../chunk-source.ts";
import type { RemoteLayer } from "../remote-layer.ts";
import { RangeSplitter } from "@shoal/base";

/**
 * Chunks from the registry that holds the layer, through the process's
 * registry clients (credentials from the docker config). Behind peers and
 * supernodes it is the last resort.
 */
export class RegistrySource implements ChunkSource {
  readonly name = "origin";
  readonly lastResort: boolean;
  private readonly clients: RegistryClients;

  /** `lastResort` (default true): asked only when every other source failed. */
  constructor(components: { clients: RegistryClients }, init: { lastResort?: boolean } = {}) {
    this.clients = components.clients;
    this.lastResort = init.lastResort ?? true;
  }

  async fetchChunks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]> {
    checkRun(layer, first, last);
    const { start, end } = runBytes(layer, first, last);
    const onChunk = opts.onChunk;
    const assembler = onChunk && last > first ? new RangeSplitter(runEnds(layer, first, last), onChunk) : undefined;
    const bytes = await this.clients.client(layer.registry).getBlobRange(layer.repository, layer.digest, start, end - start, {
      signal: opts.signal, ...(assembler ? { onBytes: (piece: Uint8Array, at: number) => assembler.push(piece, at) } : {}),
    });
    return splitRun(layer, first, last, bytes);
  }
}
