/**
 * Work shared by everyone who asks for the same key at the same time (one
 * fetch per chunk however many readers), with each asker's `AbortSignal`
 * honoured: an asker that aborts stops waiting at once, and the shared work
 * is aborted only when every asker has gone (an asker without a signal
 * keeps it going).
 */
import { AbortedError, untilAborted } from "@shoal/base";

interface Flight<T> {
  promise: Promise<T>;
  controller: AbortController;
  /** Askers still waiting that may abort; Infinity once one without a signal joined. */
  waiting: number;
}

/** Shared flights by key; see the module comment. */
export class Flights<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** True while work for `key` is under way. */
  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /**
   * Wait for the work for `key`, starting it with `start(signal)` when none
   * is under way. `signal` (the work's) aborts once every asker aborted.
   * The flight ends (and a later `join` starts anew) when the work settles.
   */
  join(key: string, start: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    let f = this.#flights.get(key);
    if (!f) {
      const controller = new AbortController();
      const flight: Flight<T> = { controller, waiting: 0, promise: Promise.resolve(undefined as T) };
      flight.promise = start(controller.signal).finally(() => {
        if (this.#flights.get(key) === flight) this.#flights.delete(key);
      });
      flight.promise.catch(() => undefined);
      this.#flights.set(key, flight);
      f = flight;
    }
    return this.#wait(f, signal);
  }

  #wait(f: Flight<T>, signal: AbortSignal | undefined): Promise<T> {
    if (!signal) {
      f.waiting = Infinity;
      return f.promise;
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    f.waiting++;
    const onAbort = () => {
      if (--f.waiting === 0) f.controller.abort(new AbortedError("every reader of this chunk went away"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    void f.promise.finally(() => signal.removeEventListener("abort", onAbort)).catch(() => undefined);
    return untilAborted(f.promise, signal);
  }
}

/** A signal that aborts once every one of `signals` has aborted (never, for an empty list). */
export function allAborted(signals: readonly AbortSignal[]): AbortSignal {
  const ctl = new AbortController();
  let left = signals.length;
  if (left === 0) return ctl.signal;
  const one = () => {
    if (--left === 0) ctl.abort(new AbortedError("every asker went away"));
  };
  for (const s of signals) {
    if (s.aborted) one();
    else s.addEventListener("abort", one, { once: true });
  }
  return ctl.signal;
}
