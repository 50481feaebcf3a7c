/** The origin registry as a chunk source: one HTTP range request per run. */
import type { RegistryClients } from "@shoal/oci";
import { checkRun, runBytes, splitRun, type ChunkSource } from "../chunk-source.ts";
import type { RemoteLayer } from "../remote-layer.ts";

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

  async fetchChunks(layer: RemoteLayer, first: number, last: number, opts: { signal: AbortSignal }): Promise<Uint8Array[]> {
    checkRun(layer, first, last);
    const { start, end } = runBytes(layer, first, last);
    const bytes = await this.clients.client(layer.registry).getBlobRange(layer.repository, layer.digest, start, end - start, opts);
    return splitRun(layer, first, last, bytes);
  }
}
