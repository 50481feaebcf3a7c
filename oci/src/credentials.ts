/**
 * Registry credentials: the `CredentialStore` seam and its implementation over
 * Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`).
 */
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { DOCKER_HUB_API_HOST, DOCKER_HUB_REGISTRY } from "./constants.ts";
import type { Logger } from "./logger.ts";
import { noopLogger } from "./logger.ts";

/** A username and password (or token used as a password). Never logged. */
export interface Credentials {
  username: string;
  password: string;
}

/** Looks up credentials for a registry host (`docker.io`, `127.0.0.1:5000`). */
export interface CredentialStore {
  /** Credentials for `registry`, or `undefined` to go anonymous. */
  get(registry: string, opts?: { signal?: AbortSignal }): Promise<Credentials | undefined>;
}

/** A store that never has credentials. */
export const anonymousCredentials: CredentialStore = { get: async () => undefined };

/** A store over a fixed map from registry host to credentials. */
export function staticCredentials(byRegistry: Record<string, Credentials>): CredentialStore {
  const map = new Map(Object.entries(byRegistry));
  return { get: async (registry) => map.get(registry) ?? (isDockerHub(registry) ? findHub(map) : undefined) };
}

function findHub(map: Map<string, Credentials>): Credentials | undefined {
  for (const [k, v] of map) if (isDockerHub(k)) return v;
  return undefined;
}

function isDockerHub(host: string): boolean {
  return host === DOCKER_HUB_REGISTRY || host === "index.docker.io" || host === DOCKER_HUB_API_HOST;
}

/** The host part of a `config.json` `auths` key: `https://host:port/v1/` → `host:port`. */
function keyHost(key: string): string {
  return key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0]!.toLowerCase();
}

/**
 * Credentials for `registry` from a parsed Docker `config.json`. Keys of
 * `auths` match by host (scheme and path ignored, so `https://host:5000/v2/`
 * matches `host:5000`); Docker Hub (`docker.io`) also matches
 * `https://index.docker.io/v1/`, `index.docker.io` and `registry-1.docker.io`.
 * An entry gives `auth` (base64 `user:password`) or `username` + `password`.
 * Returns `undefined` when nothing matches or the entry is unusable.
 * Credential helpers (`credsStore`, `credHelpers`) are not consulted.
 */
export function credentialsFromDockerConfig(config: unknown, registry: string): Credentials | undefined {
  if (typeof config !== "object" || config === null) return undefined;
  const auths = (config as { auths?: unknown }).auths;
  if (typeof auths !== "object" || auths === null) return undefined;
  const want = registry.toLowerCase();
  const hub = isDockerHub(want);
  let fallback: Credentials | undefined;
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const host = keyHost(key);
    if (host !== want && !(hub && isDockerHub(host))) continue;
    const creds = entryCredentials(entry);
    if (!creds) continue;
    if (host === want) return creds;
    fallback ??= creds;
  }
  return fallback;
}

function entryCredentials(entry: unknown): Credentials | undefined {
  if (typeof entry !== "object" || entry === null) return undefined;
  const e = entry as { auth?: unknown; username?: unknown; password?: unknown };
  if (typeof e.auth === "string" && e.auth.length > 0) {
    const decoded = Buffer.from(e.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) return undefined;
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (typeof e.username === "string" && typeof e.password === "string" && e.username.length > 0) {
    return { username: e.username, password: e.password };
  }
  return undefined;
}

/** Where Docker keeps its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: Record<string, string | undefined> = process.env, home: string = homedir()): string {
  const dir = env["DOCKER_CONFIG"];
  return dir ? join(dir, "config.json") : join(home, ".docker", "config.json");
}

/** Settings of `DockerConfigCredentialStore`. */
export interface DockerConfigCredentialStoreInit {
  /** Path of `config.json`; default `dockerConfigPath()`. */
  configPath?: string;
}

/**
 * Reads Docker's `config.json` on each lookup (it is small, and `docker login`
 * may change it). A missing or unreadable file means anonymous access.
 */
export class DockerConfigCredentialStore implements CredentialStore {
  readonly configPath: string;
  #logger: Logger;

  constructor(components: { logger?: Logger } = {}, init: DockerConfigCredentialStoreInit = {}) {
    this.#logger = components.logger ?? noopLogger;
    this.configPath = init.configPath ?? dockerConfigPath();
  }

  async get(registry: string, opts: { signal?: AbortSignal } = {}): Promise<Credentials | undefined> {
    let text: string;
    try {
      text = await readFile(this.configPath, { encoding: "utf8", signal: opts.signal });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") this.#logger.warn({ path: this.configPath, code }, "cannot read docker config");
      return undefined;
    }
    let config: unknown;
    try {
      config = JSON.parse(text);
    } catch {
      this.#logger.warn({ path: this.configPath }, "docker config is not valid JSON");
      return undefined;
    }
    const creds = credentialsFromDockerConfig(config, registry);
    this.#logger.debug({ registry, found: creds !== undefined }, "docker config credentials lookup");
    return creds;
  }
}
