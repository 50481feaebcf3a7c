import { setTimeout as delay } from "node:timers/promises";

/**
 * `p`, or a rejection with the signal's reason as soon as `signal` aborts
 * (the work behind `p` goes on; the listener is removed once `p` settles).
 * Without a signal, `p` itself.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err as Error);
      },
    );
  });
}

/** Longest delay one Node timer takes (a longer one fires after 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Resolve after `ms`; reject with the signal's own reason as soon as
 * `signal` aborts (node:timers/promises rejects with a generic AbortError,
 * which loses what the caller aborted for). Delays past a timer's limit
 * (about 24.8 days: a token bucket at a few bytes per second asks for
 * such) are waited in steps rather than firing at once. The one sleep of shoal.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    let left = ms;
    do {
      const step = Math.min(left, MAX_TIMER_MS);
      await delay(step, undefined, signal ? { signal } : {});
      left -= step;
    } while (left > 0);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

/** Call `fn` in `ms`; returns what cancels it. Components that wait take one, so that the fleet simulator can give them its own clock. */
export type After = (ms: number, fn: () => void) => () => void;

/** An `After` on Node's timers; with `unref`, a pending call does not keep the process alive. */
export function nodeAfter(opts: { unref?: boolean } = {}): After {
  return (ms, fn) => {
    const timer = setTimeout(fn, ms);
    if (opts.unref) timer.unref();
    return () => clearTimeout(timer);
  };
}
