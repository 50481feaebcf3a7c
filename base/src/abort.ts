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

/**
 * Resolve after `ms`; reject with the signal's own reason as soon as
 * `signal` aborts (node:timers/promises rejects with a generic AbortError,
 * which loses what the caller aborted for). The one sleep of shoal.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal ? { signal } : {});
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}
