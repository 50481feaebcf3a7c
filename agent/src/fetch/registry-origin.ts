import type { Chunk } from "@shoal/blockindex";
import { RegistryClient, type Logger as RegistryLogger } from "@shoal/oci";
import type { ChunkOrigin, RemoteLayer } from "./fetcher.ts";

/** Settings for registry clients the agent creates. */
export interface RegistryOriginInit {
  plainHttp?: boolean;
  /** Retry budget of one request, ms (keep below the fetch timeout). */
  maxRetryTimeMs?: number;
}

/**
 * The origin registry as a chunk source: one HTTP range request per chunk,
 * through one `RegistryClient` per registry (created on first use).
 */
export class RegistryOrigin implements ChunkOrigin {
  readonly name = "origin";
  /** Behind peers and supernodes the registry is asked only when they fail. */
  readonly lastResort = true;
  private readonly clients = new Map<string, RegistryClient>();
  private readonly logger: RegistryLogger | undefined;
  private readonly init: RegistryOriginInit;

  constructor(components: { logger?: RegistryLogger } = {}, init: RegistryOriginInit = {}) {
    this.logger = components.logger;
    this.init = init;
  }

  /** The client for `registry`. */
  client(registry: string): RegistryClient {
    let c = this.clients.get(registry);
    if (!c) {
      c = new RegistryClient(this.logger ? { logger: this.logger } : {}, {
        registry,
        plainHttp: this.init.plainHttp === true,
        userAgent: "shoal-agent/0.1",
        ...(this.init.maxRetryTimeMs !== undefined ? { maxRetryTimeMs: this.init.maxRetryTimeMs } : {}),
      });
      this.clients.set(registry, c);
    }
    return c;
  }

  fetch(layer: RemoteLayer, chunk: Chunk, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    return this.client(layer.registry).getBlobRange(layer.repository, layer.digest, chunk.offset, chunk.length, opts);
  }

  fetchRange(layer: RemoteLayer, offset: number, length: number, opts: { signal: AbortSignal }): Promise<Uint8Array> {
    return this.client(layer.registry).getBlobRange(layer.repository, layer.digest, offset, length, opts);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
    this.clients.clear();
  }
}
