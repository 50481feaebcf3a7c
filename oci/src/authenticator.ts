/**
 * Answers registry auth challenges for one registry: Basic with stored
 * credentials, or Bearer tokens fetched from the challenge's realm and cached
 * per scope until they expire. Tokens and credentials stay inside this
 * object: they are never logged and never put in error messages.
 */
import { DEFAULT_TOKEN_EXPIRES_IN_S, TOKEN_EXPIRY_MARGIN_MS } from "./constants.ts";
import { parseWwwAuthenticate, type BearerChallenge } from "./auth.ts";
import type { CredentialStore } from "./credentials.ts";
import { RegistryError } from "./errors.ts";
import type { Logger } from "./logger.ts";

/** Performs the token GET (with retries); returns the final status and body. */
export type TokenRequester = (
  url: URL,
  headers: Record<string, string>,
  opts: { signal?: AbortSignal },
) => Promise<{ status: number; body: Uint8Array }>;

/** Dependencies of an `Authenticator`. */
export interface AuthenticatorComponents {
  credentials: CredentialStore;
  requestToken: TokenRequester;
  logger: Logger;
}

/** Settings of an `Authenticator`. */
export interface AuthenticatorInit {
  /** Registry host as in references (credentials are looked up by it). */
  registry: string;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Scope string for repository access, e.g. `repository:a/b:pull,push`. */
export function repositoryScope(repository: string, actions: readonly ("pull" | "push")[]): string {
  return `repository:${repository}:${actions.join(",")}`;
}

/** Auth state for one registry. */
export class Authenticator {
  readonly registry: string;
  #components: AuthenticatorComponents;
  #now: () => number;
  #basic: string | undefined;
  #bearer: { realm: string; service?: string } | undefined;
  #tokens = new Map<string, CachedToken>();
  #pending = new Map<string, Promise<CachedToken>>();

  constructor(components: AuthenticatorComponents, init: AuthenticatorInit) {
    this.#components = components;
    this.registry = init.registry;
    this.#now = init.now ?? Date.now;
  }

  /**
   * The `Authorization` value to send for `scope` (space-separated scopes,
   * `""` for registry-wide), or `undefined` before any challenge. Once the
   * registry is known to use bearer tokens, a missing or expired token for
   * the scope is fetched here, before the request.
   */
  async authorization(scope: string, opts: { signal?: AbortSignal } = {}): Promise<string | undefined> {
    if (this.#basic) return this.#basic;
    const cached = this.#tokens.get(scope);
    if (cached && cached.expiresAt > this.#now()) return cached.header;
    if (cached) this.#tokens.delete(scope);
    if (this.#bearer) return (await this.#token(this.#bearer, scope, undefined, opts)).header;
    return undefined;
  }

  /** Forgets the cached token for `scope` (the registry refused it). */
  invalidate(scope: string): void {
    this.#tokens.delete(scope);
  }

  /**
   * Answers a 401's `WWW-Authenticate`. Returns `true` when new authorization
   * is ready and the request is worth repeating, `false` when nothing can be
   * done (no challenge shoal understands, or Basic without credentials).
   * Throws `RegistryError` (`SHOAL_ERR_REGISTRY_UNAUTHORIZED`) when the token
   * server refuses.
   */
  async respond(wwwAuthenticate: string | string[] | undefined, scope: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    const challenges = parseWwwAuthenticate(wwwAuthenticate);
    const bearer = challenges.find((c): c is BearerChallenge => c.scheme === "bearer");
    if (bearer) {
      this.#basic = undefined;
      this.#bearer = { realm: bearer.realm, ...(bearer.service !== undefined ? { service: bearer.service } : {}) };
      this.#tokens.delete(scope);
      await this.#token(this.#bearer, scope, bearer.scope, opts);
      return true;
    }
    if (challenges.some((c) => c.scheme === "basic")) {
      const creds = await this.#components.credentials.get(this.registry, opts);
      if (!creds) return false;
      const value = `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;
      const changed = value !== this.#basic;
      this.#basic = value;
      return changed;
    }
    return false;
  }

  async #token(bearer: { realm: string; service?: string }, scope: string, challengeScope: string | undefined, opts: { signal?: AbortSignal }): Promise<CachedToken> {
    const pending = this.#pending.get(scope);
    if (pending) return pending;
    const p = this.#fetchToken(bearer, scope, challengeScope, opts).finally(() => this.#pending.delete(scope));
    this.#pending.set(scope, p);
    return p;
  }

  async #fetchToken(bearer: { realm: string; service?: string }, scope: string, challengeScope: string | undefined, opts: { signal?: AbortSignal }): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(bearer.realm);
    } catch (err) {
      throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${this.registry}: bearer realm is not a URL`, { cause: err });
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${this.registry}: bearer realm must be http(s)`);
    }
    const where = `${url.origin}${url.pathname}`;
    if (bearer.service !== undefined) url.searchParams.set("service", bearer.service);
    const scopes = new Set([...scope.split(" "), ...(challengeScope ?? "").split(" ")].filter((s) => s.length > 0));
    for (const s of scopes) url.searchParams.append("scope", s);

    const headers: Record<string, string> = { accept: "application/json" };
    const creds = await this.#components.credentials.get(this.registry, opts);
    if (creds) headers["authorization"] = `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;

    const started = this.#now();
    const res = await this.#components.requestToken(url, headers, opts);
    if (res.status === 401 || res.status === 403) {
      throw new RegistryError("SHOAL_ERR_REGISTRY_UNAUTHORIZED", `token request to ${where} for ${this.registry} refused: HTTP ${res.status}${creds ? " (credentials rejected)" : " (no credentials)"}`, { status: res.status });
    }
    if (res.status !== 200) {
      throw new RegistryError("SHOAL_ERR_REGISTRY_REJECTED", `token request to ${where} for ${this.registry} failed: HTTP ${res.status}`, { status: res.status });
    }
    let doc: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      doc = JSON.parse(Buffer.from(res.body).toString("utf8")) as typeof doc;
    } catch {
      throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `token response from ${where} is not JSON`);
    }
    const token = typeof doc.token === "string" && doc.token ? doc.token : typeof doc.access_token === "string" ? doc.access_token : "";
    if (!token) throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `token response from ${where} has no token`);
    const expiresIn = typeof doc.expires_in === "number" && doc.expires_in > 0 ? doc.expires_in : DEFAULT_TOKEN_EXPIRES_IN_S;
    const lifetime = expiresIn * 1000;
    const cached: CachedToken = {
      header: `Bearer ${token}`,
      expiresAt: started + lifetime - Math.min(TOKEN_EXPIRY_MARGIN_MS, lifetime / 10),
    };
    this.#tokens.set(scope, cached);
    this.#components.logger.debug({ realm: where, scope: [...scopes].join(" "), expiresIn }, "obtained registry token");
    return cached;
  }
}
