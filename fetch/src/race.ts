/**
 * The hedged race: sources are asked in order; one that is slow gets
 * company, and the first answer wins. A pure function of its inputs (no I/O
 * of its own, only timers), so its rules are tested on their own.
 */
import { AbortedError } from "@shoal/base";

/** The abort reason an attempt sees when another entrant answered first: not a failure of its source. */
export class HedgeLostError extends AbortedError {
  constructor() {
    super("another source answered first");
  }
}

/** What a race needs to know of its entrants and how to run one. */
export interface HedgedRaceInit<S, T> {
  /** Entrants in order of preference. */
  entrants: readonly S[];
  /**
   * One attempt at entrant `s`: its value, or undefined when `s` failed. It
   * must settle soon after `signal` aborts (with `HedgeLostError` as the
   * reason when another entrant won). It should not reject; a rejection
   * counts as a failure.
   */
  attempt(s: S, signal: AbortSignal): Promise<T | undefined>;
  /** How long `s` may take before the next entrant starts beside it, ms. */
  hedgeAfterMs(s: S): number;
  /** An entrant asked only once every other has failed and none is still trying; never started as a hedge. */
  isLastResort(s: S): boolean;
  /** Called when `to` starts beside a slow `from`. */
  onHedge?(from: S, to: S): void;
  /** Aborting ends the race at once, rejecting with the signal's reason. */
  signal: AbortSignal;
}

/**
 * Run the race. Entrants start one at a time: the next starts when the
 * running ones have failed, or beside a running one that exceeded its
 * `hedgeAfterMs` (unless the next is a last resort). A last resort starts
 * only when no other entrant is still trying. Resolves with the first value
 * and its entrant (the others are aborted with `HedgeLostError`), or
 * undefined when every entrant failed.
 */
export function hedgedRace<S, T>(init: HedgedRaceInit<S, T>): Promise<{ winner: S; value: T } | undefined> {
  const { entrants, signal } = init;
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    let settled = false;
    const controllers: AbortController[] = [];
    const timers = new Set<NodeJS.Timeout>();
    const end = () => {
      settled = true;
      for (const t of timers) clearTimeout(t);
      signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      if (settled) return;
      end();
      for (const c of controllers) c.abort(signal.reason);
      reject(signal.reason);
    };
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const lastResortNext = () => next < entrants.length && init.isLastResort(entrants[next]!);
    const launch = (): void => {
      if (settled) return;
      if (next >= entrants.length) {
        if (running === 0) {
          end();
          resolve(undefined);
        }
        return;
      }
      const s = entrants[next++]!;
      const ctl = new AbortController();
      controllers.push(ctl);
      running++;
      const hedge = setTimeout(() => {
        timers.delete(hedge);
        if (settled || next >= entrants.length || lastResortNext()) return;
        init.onHedge?.(s, entrants[next]!);
        launch();
      }, init.hedgeAfterMs(s));
      timers.add(hedge);
      const failed = () => {
        clearTimeout(hedge);
        timers.delete(hedge);
        running--;
        if (settled || (running > 0 && lastResortNext())) return;
        launch();
      };
      init.attempt(s, AbortSignal.any([signal, ctl.signal])).then((value) => {
        if (value === undefined) return failed();
        clearTimeout(hedge);
        running--;
        if (settled) return;
        end();
        for (const c of controllers) if (c !== ctl) c.abort(new HedgeLostError());
        resolve({ winner: s, value });
      }, failed);
    };
    launch();
  });
}
