/**
 * The registry mirror: the OCI Distribution read API (`/v2/`, manifests,
 * blobs) for the host's engines. See `mirror-request.ts` for how a request
 * names its registry.
 *
 * - Access is the origin's to decide: every manifest and blob request first
 *   reaches the origin with the engine's own `Authorization`; a 401 goes back
 *   with its `WWW-Authenticate` challenge, so the engine's login flow (Basic,
 *   Bearer token service) works unchanged, and no cached byte reaches a
 *   caller the registry refuses. What the origin allowed a caller is
 *   remembered for a while, to keep serving while the origin is down.
 * - Manifests: tags resolve at the origin every time; manifests by digest
 *   are verified, and kept (bounded) for when the origin is down.
 * - Blobs: whole blobs come from the supernodes' block caches (in rank
 *   order) and then the origin, resuming where a source failed, verified as
 *   in `verified-send.ts`; a blob the swarm served wrong goes to the origin
 *   only, for a while. Range requests go to the origin as they are.
 * - Misses answer fast: a blob or manifest whose first byte is not ready
 *   within 10 s (a dead or frozen origin, supernodes waiting on it) is a 503.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHash } from "node:crypto";
import { AbortedError, BadRequestError, errorBody, httpStatusOf, LruMap, ociErrorOf, ShoalError, toShoalError, untilAborted } from "@shoal/base";
import { readResponseUpTo, type CredentialStore, type Credentials } from "@shoal/oci";
import { parseBasicAuth, type LayerRef, type SupernodeSet } from "@shoal/swarm";
import type { Logger } from "pino";
import { parseMirrorRequest, type MirrorRequest, type ObjectRequest } from "./mirror-request.ts";
import { ORIGIN_HEADERS_TIMEOUT_MS, originRequest, type OriginInit, type PassedHeaders } from "./origin.ts";
import { sendVerified, type BlobSource } from "./verified-send.ts";

/** What the mirror counts, for metrics. */
export interface MirrorObserver {
  /** A request was answered with `status`. */
  answered(kind: MirrorRequest["kind"], status: number): void;
  /** Blob bytes sent from `source` (`supernode`, `origin`). */
  blobBytes(source: string, bytes: number): void;
}

/**
 * Blobs the host can assemble itself: the lazy layers of converted images,
 * chunk by verified chunk from its store, peers and supernodes. The agent
 * provides it; without it every blob goes to the supernodes' block caches
 * and the origin.
 */
export interface LocalBlobs {
  /** A manifest the mirror relayed (by digest, verified): its lazy layers become known. */
  manifest(registry: string, repository: string, digest: string, bytes: Uint8Array, mediaType: string): void;
  /** Sources for `blob` (of `size` bytes), best first; [] when the host cannot assemble it. `credentials` go to the supernodes; `signal` ends the search. */
  sources(blob: LayerRef, size: number, credentials: Credentials | undefined, signal: AbortSignal): Promise<BlobSource[]>;
}

/** Components of a `RegistryMirror`. */
export interface MirrorComponents {
  logger: Logger;
  /** The datacenter's supernodes; none: every blob from the origin. */
  supernodes?: SupernodeSet;
  /** The host's registry credentials, for the supernodes' access check when the engine's own are not Basic. */
  credentials?: CredentialStore;
  local?: LocalBlobs;
  observer?: MirrorObserver;
}

/** Settings of a `RegistryMirror`. */
export interface MirrorInit extends OriginInit {
  /** Registry of requests that name none (Docker's and Pouch's `registry-mirrors`). */
  defaultRegistry: string;
  /** Registries the mirror may reach (host[:port]); another gets 403 before any connection. Absent or with `*`: every host. */
  registries?: readonly string[];
}

/** How long what the origin allowed a caller is trusted while the origin is down, ms. */
const ALLOWED_TTL_MS = 10 * 60_000;
/** How long a blob the swarm served wrong is fetched from the origin only, ms. */
const SWARM_BAD_TTL_MS = 10 * 60_000;
/** How long a blob request may wait for its first byte (the origin's HEAD and every source included) before it is a 503, ms. */
const FIRST_BYTE_MS = ORIGIN_HEADERS_TIMEOUT_MS;
/** How long the origin may take to answer when the caller's last check (and a cached manifest or blob size) stands in for it, ms. */
const ORIGIN_PROBE_MS = 2_000;
/** How long finding the host's own sources of a blob may take (a supernode's block list) before the blob goes without them, ms. */
const LOCAL_SOURCES_MS = 2_000;
/** Largest manifest relayed, bytes (as the registry client's own limit). */
const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Largest error body relayed from the origin, bytes. */
const MAX_ERROR_BODY = 64 * 1024;
const MEDIA_TYPE_MANIFEST_FALLBACK = "application/vnd.oci.image.manifest.v1+json";

interface CachedManifest {
  bytes: Buffer;
  mediaType: string;
}

/** See the module comment. */
export class RegistryMirror {
  readonly #c: MirrorComponents;
  readonly #init: MirrorInit;
  readonly #log: Logger;
  /** By `registry/repository@digest`. */
  readonly #manifests = new LruMap<string, CachedManifest>({ maxEntries: 10_000, maxWeight: 256 * 1024 * 1024, weigh: (m) => m.bytes.length });
  /** `caller\0registry/repository` → when the origin last allowed it, and blob sizes it answered. */
  readonly #allowed = new LruMap<string, number>({ maxEntries: 100_000 });
  readonly #sizes = new LruMap<string, number>({ maxEntries: 100_000 });
  readonly #swarmBad = new LruMap<string, number>({ maxEntries: 10_000 });

  constructor(components: MirrorComponents, init: MirrorInit) {
    this.#c = components;
    this.#init = init;
    this.#log = components.logger.child({ component: "mirror" });
  }

  /** A node:http request listener. Never throws: every failure becomes an OCI error body. */
  handler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const ac = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) ac.abort(new AbortedError("engine went away"));
      });
      let kind: MirrorRequest["kind"] | undefined;
      this.#handle(req, res, ac.signal, (k) => (kind = k)).then(
        () => kind && this.#c.observer?.answered(kind, res.statusCode),
        (err: unknown) => {
          const status = httpStatusOf(err);
          if (kind) this.#c.observer?.answered(kind, status);
          const path = (req.url ?? "").split("?")[0]!.slice(0, 200);
          if (status >= 500) this.#log.warn({ method: req.method, path, code: errorBody(err).code, err: (err as Error).message }, "mirror request failed");
          else this.#log.debug({ method: req.method, path, code: errorBody(err).code }, "mirror request refused");
          if (res.headersSent) return void res.destroy();
          sendOciError(res, err, kind);
        },
      );
    };
  }

  async #handle(req: IncomingMessage, res: ServerResponse, signal: AbortSignal, setKind: (k: MirrorRequest["kind"]) => void): Promise<void> {
    const method = req.method === "HEAD" ? "HEAD" : req.method === "GET" ? "GET" : undefined;
    if (!method) throw new ShoalError("SHOAL_ERR_UNSUPPORTED", "the mirror is read-only: GET and HEAD only");
    const [rawPath, rawQuery] = splitUrl(req.url ?? "/");
    const r = parseMirrorRequest(rawPath, new URLSearchParams(rawQuery), this.#init.defaultRegistry);
    setKind(r.kind);
    const allowed = this.#init.registries;
    if (r.registry !== undefined && allowed && !allowed.includes("*") && !allowed.includes(r.registry)) {
      throw new ShoalError("SHOAL_ERR_REGISTRY_NOT_ALLOWED", `registry ${r.registry} is not on this mirror's allow list (--mirror-registries)`);
    }
    const passed: PassedHeaders = {
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
    };
    if (r.kind === "ping") return this.#ping(res, r.registry, passed, signal);
    if (r.kind === "manifest") return this.#manifest(res, method, r, passed, signal);
    return this.#blob(req, res, method, r, passed, signal);
  }

  /** `/v2/`: the origin's own answer when the registry is known (its challenge), else 200. */
  async #ping(res: ServerResponse, registry: string | undefined, passed: PassedHeaders, signal: AbortSignal): Promise<void> {
    if (registry !== undefined) {
      const up = await originRequest(this.#init, registry, "GET", "/v2/", passed, signal).catch(() => undefined);
      if (up && (up.status === 401 || up.status === 403)) return relayRefusal(res, up);
      await up?.body?.cancel();
    }
    res.writeHead(200, { "content-type": "application/json", "docker-distribution-api-version": "registry/2.0" });
    res.end("{}");
  }

  async #manifest(res: ServerResponse, method: "GET" | "HEAD", r: ObjectRequest, passed: PassedHeaders, signal: AbortSignal): Promise<void> {
    const byDigest = r.reference.startsWith("sha256:");
    const cacheKey = `${r.registry}/${r.repository}@${r.reference}`;
    const allowKey = allowedKey(passed, r);
    const cached = byDigest && this.#wasAllowed(allowKey) ? this.#manifests.get(cacheKey) : undefined;
    let up: Response;
    try {
      up = await originRequest(this.#init, r.registry, "GET", `/v2/${r.repository}/manifests/${r.reference}`, passed, signal, cached ? ORIGIN_PROBE_MS : ORIGIN_HEADERS_TIMEOUT_MS);
    } catch (err) {
      if (!cached || signal.aborted) throw err;
      this.#log.info({ registry: r.registry, repository: r.repository, digest: r.reference }, "origin down: manifest served from the mirror's cache");
      return sendManifest(res, method, cached, r.reference);
    }
    if (!up.ok) return relayRefusal(res, up, "MANIFEST_UNKNOWN");
    const bytes = await readLimited(up, MAX_MANIFEST_BYTES, "manifest");
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (byDigest && digest !== r.reference) {
      throw new ShoalError("SHOAL_ERR_DIGEST_MISMATCH", `origin ${r.registry} sent a manifest for ${r.reference} that hashes to ${digest}`);
    }
    const m: CachedManifest = { bytes, mediaType: up.headers.get("content-type") ?? MEDIA_TYPE_MANIFEST_FALLBACK };
    this.#allowed.set(allowKey, Date.now());
    this.#manifests.set(`${r.registry}/${r.repository}@${digest}`, m);
    this.#c.local?.manifest(r.registry, r.repository, digest, bytes, m.mediaType);
    sendManifest(res, method, m, digest);
  }

  async #blob(req: IncomingMessage, res: ServerResponse, method: "GET" | "HEAD", r: ObjectRequest, passed: PassedHeaders, signal: AbortSignal): Promise<void> {
    const range = req.headers.range;
    if (range !== undefined && method === "GET") {
      // a resumed download: the origin's bytes as they are (the engine checks the whole)
      const up = await originRequest(this.#init, r.registry, "GET", `/v2/${r.repository}/blobs/${r.reference}`, { ...passed, range }, signal);
      if (!up.ok) return relayRefusal(res, up, "BLOB_UNKNOWN");
      return relayBody(res, up, (n) => this.#c.observer?.blobBytes("origin", n));
    }
    // the first byte within FIRST_BYTE_MS of the request, or a 503: the origin's HEAD and every source count against it
    const late = new AbortController();
    const timer = setTimeout(() => late.abort(new ShoalError("SHOAL_ERR_TIMEOUT", `no source began blob ${r.reference} within ${FIRST_BYTE_MS / 1000} s`)), FIRST_BYTE_MS);
    const until = AbortSignal.any([signal, late.signal]);
    try {
      const size = await this.#blobAccess(r, passed, until);
      const head = () => {
        clearTimeout(timer);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size, "docker-content-digest": r.reference, "accept-ranges": "bytes" });
      };
      if (method === "HEAD" || size === 0) {
        head();
        return void res.end();
      }
      await this.#sendBlob(res, r, passed, size, until, head);
    } finally {
      clearTimeout(timer);
    }
  }

  async #sendBlob(res: ServerResponse, r: ObjectRequest, passed: PassedHeaders, size: number, signal: AbortSignal, head: () => void): Promise<void> {
    const blob: LayerRef = { registry: r.registry, repository: r.repository, digest: r.reference };
    const badKey = `${r.registry}/${r.reference}`;
    const swarmBad = (this.#swarmBad.get(badKey) ?? 0) > Date.now();
    const credentials = await this.#supernodeCredentials(blob.registry, passed);
    const searching = AbortSignal.any([signal, AbortSignal.timeout(LOCAL_SOURCES_MS)]);
    const local = !swarmBad && this.#c.local ? await untilAborted(this.#c.local.sources(blob, size, credentials, searching), searching).catch((err: unknown) => {
      if (signal.aborted) throw signal.reason;
      this.#log.debug({ blob: r.reference, err: (err as Error).message }, "the host cannot assemble this blob; the supernodes and the origin serve it");
      return [];
    }) : [];
    const sources: BlobSource[] = [
      ...local,
      ...(!swarmBad ? this.#supernodeSources(blob, credentials) : []),
      this.#originSource(r, passed),
    ];
    try {
      const report = await sendVerified(res, sources, r.reference, size, signal, head);
      for (const [source, n] of Object.entries(report.bytes)) this.#c.observer?.blobBytes(source, n);
      if (report.failures.length > 0) this.#log.info({ blob: r.reference, failures: report.failures }, "blob served after a source failed");
    } catch (err) {
      if (toShoalError(err).code === "SHOAL_ERR_DIGEST_MISMATCH") {
        this.#swarmBad.set(badKey, Date.now() + SWARM_BAD_TTL_MS);
        this.#log.error({ registry: r.registry, blob: r.reference, err: (err as Error).message }, "a blob did not match its digest: the response was cut off; the next pull of it goes to the origin");
      }
      throw err;
    }
  }

  /**
   * The blob's size once the origin allowed the caller to read it (a HEAD
   * with the engine's credentials). When the origin allowed this caller
   * lately, it gets ORIGIN_PROBE_MS to answer, and the size it gave then
   * stands in when it does not.
   */
  async #blobAccess(r: ObjectRequest, passed: PassedHeaders, signal: AbortSignal): Promise<number> {
    const allowKey = allowedKey(passed, r);
    const sizeKey = `${r.registry}/${r.repository}@${r.reference}`;
    const fallback = this.#wasAllowed(allowKey) ? this.#sizes.get(sizeKey) : undefined;
    let up: Response;
    try {
      up = await originRequest(this.#init, r.registry, "HEAD", `/v2/${r.repository}/blobs/${r.reference}`, passed, signal, fallback === undefined ? ORIGIN_HEADERS_TIMEOUT_MS : ORIGIN_PROBE_MS);
    } catch (err) {
      if (fallback === undefined || signal.aborted) throw err;
      this.#log.info({ registry: r.registry, repository: r.repository, blob: r.reference }, "origin down: blob access taken from the caller's last check");
      return fallback;
    }
    if (!up.ok) {
      if (up.status >= 500) {
        const known = this.#sizes.get(sizeKey);
        if (known !== undefined && this.#wasAllowed(allowKey)) return known;
      }
      // a HEAD has no body: name the error by its status
      throw refusalError(up.status, up.headers.get("www-authenticate"), "BLOB_UNKNOWN");
    }
    const size = Number(up.headers.get("content-length"));
    if (!Number.isSafeInteger(size) || size < 0) throw new ShoalError("SHOAL_ERR_REGISTRY_PROTOCOL", `origin ${r.registry} answered a blob HEAD without a size`);
    this.#allowed.set(allowKey, Date.now());
    this.#sizes.set(sizeKey, size);
    return size;
  }

  #wasAllowed(key: string): boolean {
    const at = this.#allowed.get(key);
    return at !== undefined && Date.now() - at < ALLOWED_TTL_MS;
  }

  /** What the supernodes' access check gets: the engine's Basic credentials, else (a token) the host's own for the registry. */
  async #supernodeCredentials(registry: string, passed: PassedHeaders): Promise<Credentials | undefined> {
    try {
      return parseBasicAuth(passed.authorization);
    } catch {
      return this.#c.credentials?.get(registry).catch(() => undefined);
    }
  }

  #supernodeSources(blob: LayerRef, credentials: Credentials | undefined): BlobSource[] {
    if (!this.#c.supernodes) return [];
    return this.#c.supernodes.ranked(blob.digest).map((client): BlobSource => ({
      name: "supernode",
      open: (from, signal) => client.blob(blob, { signal, ...(credentials ? { credentials } : {}), ...(from > 0 ? { range: { start: from, end: Number.MAX_SAFE_INTEGER } } : {}) }),
    }));
  }

  #originSource(r: ObjectRequest, passed: PassedHeaders): BlobSource {
    return {
      name: "origin",
      open: async (from, signal) => {
        const up = await originRequest(this.#init, r.registry, "GET", `/v2/${r.repository}/blobs/${r.reference}`, { ...passed, ...(from > 0 ? { range: `bytes=${from}-` } : {}) }, signal);
        if (!up.ok || !up.body || (from > 0 && up.status !== 206)) {
          await up.body?.cancel();
          throw new ShoalError(up.status >= 500 ? "SHOAL_ERR_REGISTRY_UNAVAILABLE" : "SHOAL_ERR_REGISTRY_REJECTED", `origin ${r.registry} answered ${up.status} for blob ${r.reference}${from > 0 ? ` from ${from}` : ""}`);
        }
        return up.body;
      },
    };
  }
}

function splitUrl(url: string): [string, string] {
  const q = url.indexOf("?");
  return q < 0 ? [url, ""] : [url.slice(0, q), url.slice(q + 1)];
}

/** Who is asking, without keeping their secret: a hash of their `Authorization`. */
function allowedKey(passed: PassedHeaders, r: { registry: string; repository: string }): string {
  const who = passed.authorization ? createHash("sha256").update(passed.authorization).digest("hex") : "-";
  return `${who}\0${r.registry}/${r.repository}`;
}

function sendManifest(res: ServerResponse, method: "GET" | "HEAD", m: CachedManifest, digest: string): void {
  res.writeHead(200, { "content-type": m.mediaType, "content-length": m.bytes.length, "docker-content-digest": digest });
  res.end(method === "HEAD" ? undefined : m.bytes);
}

async function readLimited(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel().catch(() => undefined);
    throw new ShoalError("SHOAL_ERR_MANIFEST_TOO_LARGE", `${what} larger than ${max} bytes`);
  }
  const { bytes, cut } = await readResponseUpTo(res, max);
  if (cut) throw new ShoalError("SHOAL_ERR_MANIFEST_TOO_LARGE", `${what} larger than ${max} bytes`);
  return bytes;
}

/** Relay the origin's refusal (401 with its challenge, 403, 404, ...) with its OCI error body when it sent one. */
async function relayRefusal(res: ServerResponse, up: Response, unknownCode?: string): Promise<void> {
  const text = (await readResponseUpTo(up, MAX_ERROR_BODY).catch(() => ({ bytes: Buffer.alloc(0) }))).bytes.toString("utf8");
  let body = text;
  if (!isOciErrorBody(text)) {
    const code = up.status === 401 ? "UNAUTHORIZED" : up.status === 403 ? "DENIED" : up.status === 404 && unknownCode ? unknownCode : "UNKNOWN";
    body = JSON.stringify({ errors: [{ code, message: `origin answered ${up.status}` }] });
  }
  const challenge = up.headers.get("www-authenticate");
  res.writeHead(up.status >= 500 ? 502 : up.status, {
    "content-type": "application/json",
    "docker-distribution-api-version": "registry/2.0",
    ...(challenge ? { "www-authenticate": challenge } : {}),
  });
  res.end(body);
}

function isOciErrorBody(text: string): boolean {
  try {
    return Array.isArray((JSON.parse(text) as { errors?: unknown }).errors);
  } catch {
    return false;
  }
}

/** An error standing for an origin refusal that had no body (a HEAD), keeping its challenge. */
function refusalError(status: number, challenge: string | null, unknownCode: string): ShoalError {
  const code = status === 401 ? "SHOAL_ERR_REGISTRY_UNAUTHORIZED" : status === 403 ? "SHOAL_ERR_REGISTRY_DENIED" : status === 404 ? "SHOAL_ERR_REGISTRY_NOT_FOUND" : status >= 500 ? "SHOAL_ERR_REGISTRY_UNAVAILABLE" : "SHOAL_ERR_REGISTRY_REJECTED";
  const err = new ShoalError(code, `origin answered ${status}`);
  return Object.assign(err, { challenge: challenge ?? undefined, unknownCode });
}

async function relayBody(res: ServerResponse, up: Response, counted: (n: number) => void): Promise<void> {
  const headers: Record<string, string> = { "content-type": up.headers.get("content-type") ?? "application/octet-stream" };
  for (const h of ["content-length", "content-range", "docker-content-digest", "accept-ranges"]) {
    const v = up.headers.get(h);
    if (v) headers[h] = v;
  }
  res.writeHead(up.status, headers);
  let n = 0;
  for await (const piece of up.body ?? []) {
    n += piece.length;
    if (!res.write(piece)) await new Promise((r) => res.once("drain", r));
  }
  res.end();
  counted(n);
}

/** An OCI error body `{errors: [{code, message}]}` for a shoal error, with a 401's challenge kept. */
function sendOciError(res: ServerResponse, err: unknown, kind: MirrorRequest["kind"] | undefined): void {
  const e = toShoalError(err);
  const status = httpStatusOf(err);
  const extra = err as { challenge?: string; unknownCode?: string };
  let code: string = ociErrorOf(err);
  if (status === 404) code = extra.unknownCode ?? (kind === "blob" ? "BLOB_UNKNOWN" : kind === "manifest" ? "MANIFEST_UNKNOWN" : "NAME_UNKNOWN");
  if (err instanceof BadRequestError) code = "NAME_INVALID";
  res.writeHead(status, {
    "content-type": "application/json",
    "docker-distribution-api-version": "registry/2.0",
    ...(extra.challenge ? { "www-authenticate": extra.challenge } : {}),
  });
  res.end(JSON.stringify({ errors: [{ code, message: errorBody(e).message, detail: { shoal: e.code } }] }));
}
