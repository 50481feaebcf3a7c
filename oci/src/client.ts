/** `RegistryClient`: the OCI Distribution API of one registry, over undici. */
import { Agent, type Dispatcher } from "undici";
import { Authenticator } from "./authenticator.ts";
import { readLimited } from "./body.ts";
import { getBlob, getBlobRange, getBlobTail, headBlob, openBlob, type OpenBlob, type RangeOptions } from "./blobs.ts";
import * as C from "./constants.ts";
import type { ClientContext, ClientSettings } from "./context.ts";
import { DockerConfigCredentialStore, type CredentialStore } from "./credentials.ts";
import { RegistryError } from "./errors.ts";
import { noopLogger, type Logger } from "./logger.ts";
import { getManifest, putManifest, resolveImage, type FetchedManifest, type ManifestTarget, type ResolvedImage } from "./manifests.ts";
import type { Platform } from "./platform.ts";
import { registryApiHost } from "./reference.ts";
import type { RetryOptions } from "./retry.ts";
import { RegistryTransport } from "./transport.ts";
import { mountBlob, pushBlob, type BlobSource, type PushBlobOptions, type PushBlobResult } from "./upload.ts";

/** Dependencies of a `RegistryClient`; all optional. */
export interface RegistryClientComponents {
  /** pino-compatible logger; default: silent. */
  logger?: Logger;
  /** Where credentials come from; default: Docker's config.json. */
  credentials?: CredentialStore;
  /** undici dispatcher; default: an `Agent` owned (and closed) by the client. */
  dispatcher?: Dispatcher;
}

/** Settings of a `RegistryClient`; defaults from `constants.ts`. */
export interface RegistryClientInit {
  /** Longest wait for response headers, or between two pieces of a body, ms; a registry that accepts and never answers fails after it. Default 20 s. */
  responseTimeoutMs?: number;
  /** Registry as named in references: `docker.io` (default), `127.0.0.1:5000`. */
  registry?: string;
  /** Speak http:// instead of https:// (local registries). Default false. */
  plainHttp?: boolean;
  /** Attempts per request, first included. Default 5. */
  maxAttempts?: number;
  /** Time budget for one request's retries, ms. Default 30 000. */
  maxRetryTimeMs?: number;
  /** First backoff delay, ms. Default 200. */
  retryBaseDelayMs?: number;
  /** Cap on one backoff delay, ms. Default 5 000. */
  retryMaxDelayMs?: number;
  /** Largest manifest read, bytes. Default 4 MiB. */
  maxManifestSize?: number;
  /** Default `maxSize` of `getBlob`, bytes. Default 16 MiB. */
  maxBufferedBlobSize?: number;
  /** Blobs above this many bytes are uploaded in chunks. Default 64 MiB. */
  chunkedUploadThreshold?: number;
  /** Default PATCH size of chunked uploads, bytes. Default 16 MiB. */
  uploadChunkSize?: number;
  /** `User-Agent` header. */
  userAgent?: string;
  /** Randomness for backoff jitter (tests). */
  random?: () => number;
  /** Clock in ms for token expiry and retry budgets (tests). */
  now?: () => number;
}

/**
 * A client for one registry's `/v2/` API. Reads verify content against its
 * digest, requests retry transient failures within a budget, 401s are
 * answered with Basic credentials or bearer tokens (cached per scope).
 * Every method takes `{ signal }`; aborting rejects with the signal's reason.
 * Call `close()` when done if the client owns its dispatcher.
 */
export class RegistryClient {
  /** Registry name as in references. */
  readonly registry: string;
  /** Base URL of the API, e.g. `http://127.0.0.1:5000`. */
  readonly baseUrl: string;
  #ctx: ClientContext;
  #ownedDispatcher: Agent | undefined;

  constructor(components: RegistryClientComponents = {}, init: RegistryClientInit = {}) {
    this.registry = init.registry ?? C.DOCKER_HUB_REGISTRY;
    this.baseUrl = `${init.plainHttp ? "http" : "https"}://${registryApiHost(this.registry)}`;
    const origin = new URL(this.baseUrl).origin;
    const logger = (components.logger ?? noopLogger).child({ component: "registry-client", registry: this.registry });
    const responseTimeout = init.responseTimeoutMs ?? C.DEFAULT_RESPONSE_TIMEOUT_MS;
    if (!components.dispatcher) this.#ownedDispatcher = new Agent({ headersTimeout: responseTimeout, bodyTimeout: responseTimeout });
    const dispatcher = components.dispatcher ?? this.#ownedDispatcher!;
    const retry: RetryOptions = {
      maxAttempts: init.maxAttempts ?? C.DEFAULT_MAX_ATTEMPTS,
      maxRetryTimeMs: init.maxRetryTimeMs ?? C.DEFAULT_MAX_RETRY_TIME_MS,
      baseDelayMs: init.retryBaseDelayMs ?? C.DEFAULT_RETRY_BASE_DELAY_MS,
      maxDelayMs: init.retryMaxDelayMs ?? C.DEFAULT_RETRY_MAX_DELAY_MS,
      ...(init.random ? { random: init.random } : {}),
      ...(init.now ? { now: init.now } : {}),
    };
    // Token requests go through a transport of their own: no registry auth, same retries.
    const tokenTransport = new RegistryTransport({ dispatcher, logger }, { origin, retry, ...(init.userAgent ? { userAgent: init.userAgent } : {}) });
    const authenticator = new Authenticator(
      {
        credentials: components.credentials ?? new DockerConfigCredentialStore({ logger }),
        logger,
        requestToken: (url, headers, opts) =>
          tokenTransport.execute(
            { method: "GET", url, headers, auth: false, expect: [200, 400, 401, 403, 404], signal: opts.signal },
            async (res) => ({
              status: res.status,
              body: await readLimited(res.body, 1024 * 1024, () => new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", "token response larger than 1 MiB")),
            }),
          ),
      },
      { registry: this.registry, ...(init.now ? { now: init.now } : {}) },
    );
    const transport = new RegistryTransport({ dispatcher, logger, authenticator }, { origin, retry, ...(init.userAgent ? { userAgent: init.userAgent } : {}) });
    const settings: ClientSettings = {
      maxManifestSize: init.maxManifestSize ?? C.DEFAULT_MAX_MANIFEST_SIZE,
      maxBufferedBlobSize: init.maxBufferedBlobSize ?? C.DEFAULT_MAX_BUFFERED_BLOB_SIZE,
      chunkedUploadThreshold: init.chunkedUploadThreshold ?? C.DEFAULT_CHUNKED_UPLOAD_THRESHOLD,
      uploadChunkSize: init.uploadChunkSize ?? C.DEFAULT_UPLOAD_CHUNK_SIZE,
    };
    const baseUrl = this.baseUrl;
    this.#ctx = { registry: this.registry, transport, logger, settings, url: (path) => new URL(path, baseUrl) };
  }

  /** See `getManifest` in manifests.ts: fetch a manifest or index by tag or digest (verified when by digest). */
  getManifest(ref: ManifestTarget, opts: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
    return getManifest(this.#ctx, ref, opts);
  }

  /** See `resolveImage`: follow an index to the manifest for `platform` (default: this host). */
  resolveImage(ref: ManifestTarget, opts: { platform?: Platform; signal?: AbortSignal } = {}): Promise<ResolvedImage> {
    return resolveImage(this.#ctx, ref, opts);
  }

  /** See `putManifest`: store a manifest under a tag or digest; returns its digest. */
  putManifest(repository: string, tagOrDigest: string, bytes: Uint8Array, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
    return putManifest(this.#ctx, repository, tagOrDigest, bytes, mediaType, opts);
  }

  /** See `headBlob`: the blob's size, or `undefined` when absent. */
  headBlob(repository: string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<{ size: number } | undefined> {
    return headBlob(this.#ctx, repository, digest, opts);
  }

  /** See `getBlob`: a whole blob in memory, verified, at most `maxSize` bytes. */
  getBlob(repository: string, digest: string, opts: { signal?: AbortSignal; maxSize?: number } = {}): Promise<Uint8Array> {
    return getBlob(this.#ctx, repository, digest, opts);
  }

  /** See `openBlob`: stream a blob; the iterator verifies the digest before its last chunk. */
  openBlob(repository: string, digest: string, opts: { signal?: AbortSignal } = {}): Promise<OpenBlob> {
    return openBlob(this.#ctx, repository, digest, opts);
  }

  /** See `getBlobRange`: bytes `[offset, offset + length)`, length > 0, inside the blob. */
  getBlobRange(repository: string, digest: string, offset: number, length: number, opts: RangeOptions = {}): Promise<Uint8Array> {
    return getBlobRange(this.#ctx, repository, digest, offset, length, opts);
  }

  /** See `getBlobTail`: the last `length` bytes (fewer if the blob is shorter) and the blob's size. */
  getBlobTail(repository: string, digest: string, length: number, opts: { signal?: AbortSignal } = {}): Promise<{ bytes: Uint8Array; totalSize: number }> {
    return getBlobTail(this.#ctx, repository, digest, length, opts);
  }

  /** See `pushBlob`: make a blob present (exists / mount / monolithic or chunked upload). */
  pushBlob(repository: string, digest: string, size: number, source: BlobSource, opts: PushBlobOptions = {}): Promise<PushBlobResult> {
    return pushBlob(this.#ctx, repository, digest, size, source, opts);
  }

  /** See `mountBlob`: a cross-repository mount only; true when the registry mounted the blob. */
  mountBlob(repository: string, digest: string, from: string, opts: { signal?: AbortSignal } = {}): Promise<boolean> {
    return mountBlob(this.#ctx, repository, digest, from, opts);
  }

  /** Closes the client's own connection pool (no-op with an injected dispatcher). */
  async close(): Promise<void> {
    await this.#ownedDispatcher?.close();
  }
}
