/**
 * HTTP for one registry: authentication (one challenge round per request),
 * redirects, and retries with backoff for transient failures. Everything
 * above it speaks in `RegistryError`s.
 */
import { ShoalError, sleep } from "@shoal/base";
import type { IncomingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { Dispatcher } from "undici";
import type { Authenticator } from "./authenticator.ts";
import { closeBody, discard, readLimited } from "./body.ts";
import { MAX_REDIRECTS, USER_AGENT } from "./constants.ts";
import { RegistryError, type RegistryErrorDetail } from "./errors.ts";
import type { Logger } from "./logger.ts";
import { describeDetails, errorFromResponse, readErrorDetails } from "./response-errors.ts";
import { isRetryableNetworkError, isRetryableStatus, networkErrorCode, parseRetryAfter, RetryBudget, type RetryOptions } from "./retry.ts";

/** HTTP methods the registry API uses. */
export type HttpMethod = "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One logical request (retried, authenticated and redirected as a unit). */
export interface TransportRequest {
  method: HttpMethod;
  url: URL;
  headers?: Record<string, string>;
  /** Makes the body; called once per attempt so every attempt sends it whole. */
  body?: () => Uint8Array | Readable;
  /** Auth scope (`repository:x:pull`, space-separated; `""` registry-wide). Default `""`. */
  scope?: string;
  /** Send registry credentials / answer 401 challenges (only ever to the registry's origin). Default true. */
  auth?: boolean;
  /** Statuses handed to the consumer; any other final status becomes a `RegistryError`. */
  expect: readonly number[];
  /** Retry transient failures (default true). False for requests that must not repeat. */
  retry?: boolean;
  /** Follow 3xx redirects (default true for GET and HEAD). Auth is dropped on other origins. */
  redirect?: boolean;
  signal?: AbortSignal;
}

/** A response with an expected status. The consumer owns `body` and must read or destroy it. */
export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable & { dump?: (opts?: { limit: number }) => Promise<void> };
  /** Final URL after redirects. */
  url: URL;
}

/** Dependencies of a `RegistryTransport`. */
export interface TransportComponents {
  dispatcher: Dispatcher;
  authenticator?: Authenticator;
  logger: Logger;
}

/** Settings of a `RegistryTransport`. */
export interface TransportInit {
  /** Origin of the registry API (`https://host:port`); credentials go only there. */
  origin: string;
  retry: RetryOptions;
  userAgent?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** `METHOD host/path` with no query string (query strings may carry signed secrets). */
export function describeRequest(method: string, url: URL): string {
  return `${method} ${url.host}${url.pathname}`;
}

/** Sends registry requests. */
export class RegistryTransport {
  readonly origin: string;
  #c: TransportComponents;
  #retry: RetryOptions;
  #userAgent: string;

  constructor(components: TransportComponents, init: TransportInit) {
    this.#c = components;
    this.origin = init.origin;
    this.#retry = init.retry;
    this.#userAgent = init.userAgent ?? USER_AGENT;
  }

  /** The retry settings in force. */
  get retryOptions(): RetryOptions {
    return this.#retry;
  }

  /**
   * Sends `req` and passes a response with an expected status to `consume`,
   * whose result is returned. Transient failures (network errors, 408, 429,
   * 5xx) — including network errors thrown by `consume` while reading the
   * body — are retried with backoff within the retry budget, then reported as
   * `SHOAL_ERR_REGISTRY_UNAVAILABLE`. Typed errors from `consume` are not
   * retried. Once `consume` returns, its result is the caller's: a stream
   * handed out is never retried. Aborting `signal` rejects with its reason.
   */
  async execute<T>(req: TransportRequest, consume: (res: TransportResponse) => Promise<T>): Promise<T> {
    const budget = new RetryBudget(this.#retry);
    const retry = req.retry ?? true;
    const what = describeRequest(req.method, req.url);
    for (;;) {
      budget.begin();
      let res: TransportResponse | undefined;
      let retryAfter: number | undefined;
      let failure: { status?: number; details?: RegistryErrorDetail[]; cause?: unknown };
      try {
        res = await this.#send(req);
        if (req.expect.includes(res.status)) {
          const r = res;
          return await consume(r);
        }
        if (!isRetryableStatus(res.status)) throw await errorFromResponse(what, res.status, res.body);
        retryAfter = parseRetryAfter(res.headers["retry-after"]);
        failure = { status: res.status, details: await readErrorDetails(res.body) };
      } catch (err) {
        if (res) closeBody(res.body);
        if (req.signal?.aborted) throw req.signal.reason;
        if (err instanceof ShoalError) throw err;
        if (networkErrorCode(err) === undefined) throw err;
        failure = { cause: err };
        if (!isRetryableNetworkError(err)) throw unavailable(what, budget.attempts, failure);
      }
      const wait = retry ? budget.nextDelay(retryAfter) : undefined;
      if (wait === undefined) throw unavailable(what, budget.attempts, failure);
      this.#c.logger.debug(
        { request: what, attempt: budget.attempts, status: failure.status, error: networkErrorCode(failure.cause), delayMs: wait },
        "retrying registry request",
      );
      await sleep(wait, req.signal);
    }
  }

  /**
   * Sends `req` and reads the whole body (at most `limit` bytes, else
   * `tooLarge()` is thrown and the connection closed). Retries as `execute`.
   */
  async fetchBytes(req: TransportRequest, limit: number, tooLarge: () => Error): Promise<{ status: number; headers: IncomingHttpHeaders; bytes: Uint8Array }> {
    return this.execute(req, async (res) => {
      const len = Number(res.headers["content-length"]);
      if (Number.isFinite(len) && len > limit) {
        closeBody(res.body);
        throw tooLarge();
      }
      const bytes = await readLimited(res.body, limit, tooLarge);
      return { status: res.status, headers: res.headers, bytes };
    });
  }

  /** One attempt: auth challenge round and redirects included. */
  async #send(req: TransportRequest): Promise<TransportResponse> {
    const scope = req.scope ?? "";
    const useAuth = (req.auth ?? true) && this.#c.authenticator !== undefined;
    const follow = req.redirect ?? (req.method === "GET" || req.method === "HEAD");
    let url = req.url;
    let challenged = false;
    for (let hops = 0; ; ) {
      const onRegistry = url.origin === this.origin;
      const headers: Record<string, string> = { "user-agent": this.#userAgent, ...req.headers };
      let authorization: string | undefined;
      if (useAuth && onRegistry) {
        authorization = await this.#c.authenticator!.authorization(scope, { signal: req.signal });
        if (authorization) headers["authorization"] = authorization;
      }
      const res = await this.#c.dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: req.method,
        headers,
        body: req.body ? req.body() : null,
        signal: req.signal ?? null,
      });
      if (res.statusCode === 401 && useAuth && onRegistry && !challenged) {
        challenged = true;
        await discard(res.body);
        if (authorization) this.#c.authenticator!.invalidate(scope);
        if (await this.#c.authenticator!.respond(res.headers["www-authenticate"], scope, { signal: req.signal })) continue;
        throw new RegistryError(
          "SHOAL_ERR_REGISTRY_UNAUTHORIZED",
          `${describeRequest(req.method, url)}: HTTP 401 (authentication required${authorization ? ", credentials rejected" : ""})`,
          { status: 401 },
        );
      }
      const location = res.headers["location"];
      if (follow && REDIRECTS.has(res.statusCode) && typeof location === "string") {
        await discard(res.body);
        if (++hops > MAX_REDIRECTS) {
          throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest(req.method, req.url)}: more than ${MAX_REDIRECTS} redirects`);
        }
        url = new URL(location, url);
        if (url.protocol !== "http:" && url.protocol !== "https:") {
          throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `${describeRequest(req.method, req.url)}: redirect to a non-HTTP URL`);
        }
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url };
    }
  }
}

function unavailable(what: string, attempts: number, failure: { status?: number; details?: RegistryErrorDetail[]; cause?: unknown }): RegistryError {
  const reason =
    failure.status !== undefined
      ? `HTTP ${failure.status}${failure.details?.length ? ` (${describeDetails(failure.details)})` : ""}`
      : (networkErrorCode(failure.cause) ?? "network error");
  return new RegistryError("SHOAL_ERR_REGISTRY_UNAVAILABLE", `${what}: registry unavailable after ${attempts} attempt${attempts === 1 ? "" : "s"}: ${reason}`, {
    attempts,
    ...(failure.status !== undefined ? { status: failure.status } : {}),
    ...(failure.details ? { details: failure.details } : {}),
    ...(failure.cause !== undefined ? { cause: failure.cause } : {}),
  });
}
