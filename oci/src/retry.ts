/** Retry policy: which failures are transient, and exponential backoff with jitter within a budget. */

/** Limits on retrying one operation. */
export interface RetryOptions {
  /** Attempts in all, the first included (≥ 1). */
  maxAttempts: number;
  /** Total time from the first attempt after which no new attempt starts, in ms. */
  maxRetryTimeMs: number;
  /** Backoff before the 2nd attempt, in ms; doubles for each later one. */
  baseDelayMs: number;
  /** Cap on one backoff delay, in ms (a `Retry-After` may exceed it, within the budget). */
  maxDelayMs: number;
  /** Source of randomness for jitter, in [0, 1); default `Math.random`. */
  random?: () => number;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/**
 * Backoff before attempt `attempt + 1` after `attempt` failures (attempt ≥ 1):
 * `min(maxDelay, base · 2^(attempt-1))`, scaled by a jitter factor in [0.5, 1).
 */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const exp = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp * (0.5 + random() / 2));
}

/** Counts attempts and time for one operation and says whether, and after how long, to try again. */
export class RetryBudget {
  readonly options: RetryOptions;
  #start: number;
  #attempts = 0;
  #now: () => number;

  constructor(options: RetryOptions) {
    this.options = options;
    this.#now = options.now ?? Date.now;
    this.#start = this.#now();
  }

  /** Attempts started so far. */
  get attempts(): number {
    return this.#attempts;
  }

  /** Records the start of an attempt. */
  begin(): void {
    this.#attempts++;
  }

  /**
   * After a transient failure: the delay (ms) before the next attempt, or
   * `undefined` when attempts or time are spent. A `retryAfterMs` from the
   * server replaces the computed backoff; if it would end past the time
   * budget, there is no next attempt.
   */
  nextDelay(retryAfterMs?: number): number | undefined {
    if (this.#attempts >= this.options.maxAttempts) return undefined;
    const wait =
      retryAfterMs !== undefined
        ? retryAfterMs
        : backoffDelay(this.#attempts, this.options.baseDelayMs, this.options.maxDelayMs, this.options.random);
    if (this.#now() - this.#start + wait > this.options.maxRetryTimeMs) return undefined;
    return wait;
  }
}

/** Statuses worth retrying: 408, 429 and 5xx except 501 and 505. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
]);

/** The errno / undici code of an error or of its causes (first found). */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && typeof e === "object" && e !== null; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (RETRYABLE_CODES.has(code) || /^E[A-Z]+$/.test(code) || code.startsWith("UND_ERR"))) return code;
    if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0];
    else e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True for socket-level failures (reset, refused, timeouts, closed) that a retry may cure. */
export function isRetryableNetworkError(err: unknown): boolean {
  const code = networkErrorCode(err);
  return code !== undefined && RETRYABLE_CODES.has(code);
}

/**
 * A `Retry-After` value in ms: delta-seconds or an HTTP date (relative to
 * `now`). `undefined` when absent or unparsable; negative dates give 0.
 */
export function parseRetryAfter(value: string | string[] | undefined, now: number = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v) * 1000;
  const date = Date.parse(v);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

