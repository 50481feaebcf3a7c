/**
 * A token bucket metering bytes. Callers take tokens before sending; a
 * caller that overdraws the bucket waits until the debt is repaid, so
 * concurrent callers together never exceed the rate (after the burst).
 */
import { sleep } from "./abort.ts";

/** Settings of a TokenBucket. */
export interface TokenBucketInit {
  /** Refill rate in tokens (bytes) per second; 0 or Infinity disables limiting. */
  rate: number;
  /** Bucket capacity: how many tokens may be spent at once after idling. Defaults to `rate`. */
  burst?: number;
}

/** Clock and timer of a TokenBucket; tests pass their own. */
export interface TokenBucketComponents {
  /** Milliseconds, monotonic. */
  now?: () => number;
  /** Wait `ms`; rejects with the signal's reason when it aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Rate limiter in bytes per second with a burst allowance. */
export class TokenBucket {
  private readonly rate: number;
  private readonly burst: number;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private tokens: number;
  private last: number;

  constructor(init: TokenBucketInit, components: TokenBucketComponents = {}) {
    this.rate = init.rate > 0 && Number.isFinite(init.rate) ? init.rate : Infinity;
    this.burst = Math.max(0, init.burst ?? this.rate);
    this.now = components.now ?? (() => performance.now());
    this.sleep = components.sleep ?? sleep;
    this.tokens = this.burst;
    this.last = this.now();
  }

  /**
   * Takes `n` tokens, waiting as long as the bucket is in debt. Resolves at
   * once when unlimited or when enough tokens are stored; rejects with the
   * signal's reason if aborted while waiting (the tokens stay spent).
   */
  async take(n: number, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.rate === Infinity) return;
    options.signal?.throwIfAborted();
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    this.tokens -= n;
    if (this.tokens >= 0) return;
    await this.sleep((-this.tokens / this.rate) * 1000, options.signal);
  }
}
