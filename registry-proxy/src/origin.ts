/**
 * Requests to the origin registry on behalf of an engine: the engine's own
 * `Authorization` (Basic, or a Bearer token it got from the registry's token
 * service) passes through unchanged, so the registry decides what the engine
 * may read; nothing is retried or re-authenticated here (the engine's own
 * client does that). Answers arrive as they are; waiting for the headers is
 * bounded so that a dead or frozen origin costs the engine a fast 503.
 */
import { ShoalError } from "@shoal/base";
import { registryApiHost } from "@shoal/oci";

/** How long the origin may take to answer with headers, ms. */
export const ORIGIN_HEADERS_TIMEOUT_MS = 10_000;

/** The request headers an engine's request passes on to the origin. */
export interface PassedHeaders {
  authorization?: string;
  accept?: string;
  range?: string;
}

/** Settings of origin requests. */
export interface OriginInit {
  /** Speak http:// to registries. */
  plainHttp: boolean;
  userAgent: string;
}

/**
 * A request to `registry`'s API path `path` (`/v2/...`). Headers not there
 * within `timeoutMs` (default {@link ORIGIN_HEADERS_TIMEOUT_MS}) throw
 * `SHOAL_ERR_TIMEOUT` (a 503); network failures throw
 * `SHOAL_ERR_REGISTRY_UNAVAILABLE`; `signal` aborting throws its reason.
 */
export async function originRequest(init: OriginInit, registry: string, method: "GET" | "HEAD", path: string, headers: PassedHeaders, signal: AbortSignal, timeoutMs = ORIGIN_HEADERS_TIMEOUT_MS): Promise<Response> {
  const url = `${init.plainHttp ? "http" : "https"}://${registryApiHost(registry)}${path}`;
  const h: Record<string, string> = { "user-agent": init.userAgent };
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) h[k] = v;
  const timeout = AbortSignal.timeout(timeoutMs);
  const headersDone = new AbortController();
  const onTimeout = () => headersDone.abort(timeout.reason);
  timeout.addEventListener("abort", onTimeout, { once: true });
  try {
    return await fetch(url, { method, headers: h, signal: AbortSignal.any([signal, headersDone.signal]) });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (headersDone.signal.aborted) throw new ShoalError("SHOAL_ERR_TIMEOUT", `registry ${registry} did not answer within ${timeoutMs / 1000} s`, { cause: err });
    throw new ShoalError("SHOAL_ERR_REGISTRY_UNAVAILABLE", `registry ${registry} unreachable: ${(err as Error).message}`, { cause: err });
  } finally {
    timeout.removeEventListener("abort", onTimeout);
  }
}
