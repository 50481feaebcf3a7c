/** Registry clients of the supernode: one per registry, plus one per distinct caller credentials. */
import { BadRequestError, ShoalError } from "@shoal/base";
import { createHash } from "node:crypto";
import { RegistryClient, staticCredentials, type Logger as RegistryLogger } from "@shoal/oci";
import { MAX_CREDENTIAL_CLIENTS } from "./constants.ts";

/** Credentials a caller passed (parsed from `Authorization: Basic`). Never logged. */
export interface CallerCredentials {
  username: string;
  password: string;
}

/**
 * Parse an `Authorization` header: `Basic <base64 user:password>` gives
 * credentials, no header gives undefined, any other form is a
 * `BadRequestError` (the header is never echoed).
 */
export function parseBasicAuth(header: string | undefined): CallerCredentials | undefined {
  if (header === undefined || header === "") return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m) throw new BadRequestError("Authorization: only Basic credentials are passed through to registries");
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) throw new BadRequestError("Authorization: malformed Basic credentials");
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** Where the supernode gets registry clients. */
export interface OriginClients {
  /** The client for `registry`: with `credentials` when given, else the supernode's docker config. */
  client(registry: string, credentials?: CallerCredentials): RegistryClient;
  close(): Promise<void>;
}

/** Settings of `RegistryClients`. */
export interface RegistryClientsInit {
  plainHttp?: boolean;
  /** Retry budget of one origin request, ms. */
  maxRetryTimeMs?: number;
  /** When set, only these registries may be contacted (`SHOAL_ERR_REGISTRY_NOT_ALLOWED` otherwise). */
  allowedRegistries?: readonly string[];
}

/** `OriginClients` over `RegistryClient`s created on first use; caller-credential clients are LRU-bounded. */
export class RegistryClients implements OriginClients {
  readonly #logger: RegistryLogger | undefined;
  readonly #init: RegistryClientsInit;
  readonly #clients = new Map<string, RegistryClient>();
  readonly #closing: Promise<void>[] = [];

  constructor(components: { logger?: RegistryLogger } = {}, init: RegistryClientsInit = {}) {
    this.#logger = components.logger;
    this.#init = init;
  }

  client(registry: string, credentials?: CallerCredentials): RegistryClient {
    if (this.#init.allowedRegistries && !this.#init.allowedRegistries.includes(registry)) {
      throw new ShoalError("SHOAL_ERR_REGISTRY_NOT_ALLOWED", `registry ${registry} is not served by this supernode`);
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
        userAgent: "shoal-supernode/0.1",
        ...(this.#init.maxRetryTimeMs !== undefined ? { maxRetryTimeMs: this.#init.maxRetryTimeMs } : {}),
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
