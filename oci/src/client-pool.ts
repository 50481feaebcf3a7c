/**
 * Registry clients of a process: one per registry (with the process's own
 * credentials from the docker config), plus one per distinct caller
 * credentials (a supernode serving many teams), created on first use.
 */
import { ShoalError } from "@shoal/base";
import { createHash } from "node:crypto";
import { RegistryClient } from "./client.ts";
import { staticCredentials, type Credentials } from "./credentials.ts";
import type { Logger as RegistryLogger } from "./logger.ts";

/** Where registry clients come from. */
export interface RegistryClients {
  /** The client for `registry`: with `credentials` when given, else the process's docker config. */
  client(registry: string, credentials?: Credentials): RegistryClient;
  close(): Promise<void>;
}

/** Most clients kept for distinct caller credentials (least recently used closed first). */
export const MAX_CREDENTIAL_CLIENTS = 64;

/** Settings of a `RegistryClientPool`. */
export interface RegistryClientPoolInit {
  /** `User-Agent` of every request, e.g. `shoal-agent/0.1`. */
  userAgent?: string;
  plainHttp?: boolean;
  /** Retry budget of one origin request, ms. */
  maxRetryTimeMs?: number;
  /** Longest wait for a response's headers or its next body piece, ms (`RegistryClientInit.responseTimeoutMs`). */
  responseTimeoutMs?: number;
  /** When set, only these registries may be contacted (`SHOAL_ERR_REGISTRY_NOT_ALLOWED` otherwise). */
  allowedRegistries?: readonly string[];
}

/** `RegistryClients` created on first use; caller-credential clients are LRU-bounded. */
export class RegistryClientPool implements RegistryClients {
  readonly #logger: RegistryLogger | undefined;
  readonly #init: RegistryClientPoolInit;
  readonly #clients = new Map<string, RegistryClient>();
  readonly #closing: Promise<void>[] = [];

  constructor(components: { logger?: RegistryLogger } = {}, init: RegistryClientPoolInit = {}) {
    this.#logger = components.logger;
    this.#init = init;
  }

  client(registry: string, credentials?: Credentials): RegistryClient {
    if (this.#init.allowedRegistries && !this.#init.allowedRegistries.includes(registry)) {
      throw new ShoalError("SHOAL_ERR_REGISTRY_NOT_ALLOWED", `registry ${registry} is not on the allow list`);
    }
    const key = credentials
      ? `${registry}\0${createHash("sha256").update(`${credentials.username}\0${credentials.password}`).digest("hex")}`
      : registry;
    let c = this.#clients.get(key);
    if (c) {
      // LRU: move to the end.
      this.#clients.delete(key);
      this.#clients.set(key, c);
      return c;
    }
    c = new RegistryClient(
      {
        ...(this.#logger ? { logger: this.#logger } : {}),
        ...(credentials ? { credentials: staticCredentials({ [registry]: credentials }) } : {}),
      },
      {
        registry,
        plainHttp: this.#init.plainHttp === true,
        userAgent: this.#init.userAgent ?? "shoal/0.1",
        ...(this.#init.maxRetryTimeMs !== undefined ? { maxRetryTimeMs: this.#init.maxRetryTimeMs } : {}),
        ...(this.#init.responseTimeoutMs !== undefined ? { responseTimeoutMs: this.#init.responseTimeoutMs } : {}),
      },
    );
    this.#clients.set(key, c);
    if (credentials) this.#evict();
    return c;
  }

  #evict(): void {
    let withCreds = [...this.#clients.keys()].filter((k) => k.includes("\0"));
    while (withCreds.length > MAX_CREDENTIAL_CLIENTS) {
      const k = withCreds.shift()!;
      const c = this.#clients.get(k)!;
      this.#clients.delete(k);
      this.#closing.push(c.close().catch(() => undefined));
      withCreds = withCreds.filter((x) => x !== k);
    }
  }

  async close(): Promise<void> {
    const all = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all([...all.map((c) => c.close().catch(() => undefined)), ...this.#closing]);
  }
}
