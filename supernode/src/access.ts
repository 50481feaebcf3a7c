/**
 * Caller access to layers. Cached chunks must not leak from a private
 * repository to a caller the registry would refuse: before serving, the
 * supernode checks (HEAD blob with the caller's credentials) that the
 * registry lets this caller read this layer, and remembers a yes for a while.
 * Once that while is over, a caller verified before is checked again, but
 * the registry gets `probeMs` to say no: a frozen registry must not stall
 * the cache (an engine behind the mirror has 10 s for its first byte).
 */
import { layerKey, type LayerRef } from "@shoal/swarm";
import { sleep, untilAborted } from "@shoal/base";
import { createHash } from "node:crypto";
import { RegistryError, type Credentials, type RegistryClients } from "@shoal/oci";
import { DEFAULT_ACCESS_TTL_MS } from "./constants.ts";

/** Settings of an `AccessCheck`. */
export interface AccessCheckInit {
  /** How long a successful check is trusted, ms. 0 disables checking altogether. */
  ttlMs?: number;
  /** Most remembered (layer, caller) pairs. */
  maxEntries?: number;
  /** How long the registry may take to refuse a caller verified before, ms, before it is let through (default 1.5 s). */
  probeMs?: number;
}

const DEFAULT_PROBE_MS = 1_500;

/** See the module comment. */
export class AccessCheck {
  readonly #origins: RegistryClients;
  readonly #now: () => number;
  readonly #ttl: number;
  readonly #max: number;
  readonly #probeMs: number;
  /** Key -> time of the last successful check. */
  readonly #verified = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(components: { origins: RegistryClients; now?: () => number }, init: AccessCheckInit = {}) {
    this.#origins = components.origins;
    this.#now = components.now ?? Date.now;
    this.#ttl = init.ttlMs ?? DEFAULT_ACCESS_TTL_MS;
    this.#max = init.maxEntries ?? 100_000;
    this.#probeMs = init.probeMs ?? DEFAULT_PROBE_MS;
  }

  /**
   * Resolves when `credentials` (undefined: the supernode's own) may read
   * `layer`; rejects with the registry's `RegistryError` (401, 403, 404)
   * otherwise. When the registry is unavailable, or does not answer within
   * `probeMs`, a caller verified before (however long ago) is let through
   * so that the cache keeps serving.
   */
  async check(layer: LayerRef, credentials: Credentials | undefined, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#ttl === 0) return;
    const who = credentials ? createHash("sha256").update(`${credentials.username}\0${credentials.password}`).digest("hex") : "-";
    const key = `${layerKey(layer)}\0${who}`;
    const at = this.#verified.get(key);
    if (at !== undefined && this.#now() - at < this.#ttl) return;
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#verify(layer, credentials, key, at !== undefined).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    const verified = untilAborted(p, opts.signal);
    if (at === undefined) return verified;
    verified.catch(() => undefined); // a refusal after the probe reaches the caller's next check
    const settled = new AbortController();
    const probe = sleep(this.#probeMs, opts.signal ? AbortSignal.any([opts.signal, settled.signal]) : settled.signal);
    probe.catch(() => undefined);
    try {
      const answered = await Promise.race([verified.then(() => true), probe.then(() => false)]);
      if (!answered) this.#remember(key); // trusted as before, until the registry answers or the TTL runs out again
    } finally {
      settled.abort();
    }
  }

  async #verify(layer: LayerRef, credentials: Credentials | undefined, key: string, seenBefore: boolean): Promise<void> {
    try {
      const head = await this.#origins.client(layer.registry, credentials).headBlob(layer.repository, layer.digest);
      if (!head) throw new RegistryError("SHOAL_ERR_REGISTRY_NOT_FOUND", `blob ${layer.repository}@${layer.digest} not found in ${layer.registry}`, { status: 404 });
    } catch (err) {
      if (seenBefore && err instanceof RegistryError && err.code === "SHOAL_ERR_REGISTRY_UNAVAILABLE") return;
      if (err instanceof RegistryError && err.code !== "SHOAL_ERR_REGISTRY_UNAVAILABLE") this.#verified.delete(key); // a no, even one that came after the probe
      throw err;
    }
    this.#remember(key);
  }

  #remember(key: string): void {
    this.#verified.delete(key);
    this.#verified.set(key, this.#now());
    while (this.#verified.size > this.#max) this.#verified.delete(this.#verified.keys().next().value!);
  }
}
