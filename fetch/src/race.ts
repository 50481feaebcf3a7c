/**
 * The hedged race: sources are asked in order; one that is slow gets
 * company, and the first answer wins. A pure function of its inputs (no I/O
 * of its own, only timers), so its rules are tested on their own. Its core,
 * `runHedgedRace`, takes callbacks and a clock, so the fleet simulator runs
 * the same race on its simulated clock; `hedgedRace` is that core with
 * promises, abort signals and Node's timers.
 */
import { AbortedError, nodeAfter, type After } from "@shoal/base";

/** The abort reason an attempt sees when another entrant answered first: not a failure of its source. */
export class HedgeLostError extends AbortedError {
  constructor() {
    super("another source answered first");
  }
}

/** The rules of a race: its entrants, when one gets company, which is asked last. */
interface RaceRules<S> {
  /** Entrants in order of preference. */
  entrants: readonly S[];
  /** How long `s` may take before the next entrant starts beside it, ms. */
  hedgeAfterMs(s: S): number;
  /** An entrant asked only once every other has failed and none is still trying; never started as a hedge. */
  isLastResort(s: S): boolean;
  /** Called when `to` starts beside a slow `from`. */
  onHedge?(from: S, to: S): void;
}

/** What a race needs to know of its entrants and how to run one. */
export interface HedgedRaceInit<S, T> extends RaceRules<S> {
  /**
   * One attempt at entrant `s`: its value, or undefined when `s` failed. It
   * must settle soon after `signal` aborts (with `HedgeLostError` as the
   * reason when another entrant won). It should not reject; a rejection
   * counts as a failure.
   */
  attempt(s: S, signal: AbortSignal): Promise<T | undefined>;
  /** Aborting ends the race at once, rejecting with the signal's reason. */
  signal: AbortSignal;
}

/** `runHedgedRace`'s init: the rules, attempts by callback, and a clock. */
export interface HedgedRaceCore<S, T> extends RaceRules<S> {
  /**
   * Start one attempt at entrant `s`; it calls `settle` once, with its
   * value or undefined when `s` failed. Returns what stops it, called with
   * `HedgeLostError` when another entrant won (or the race's abort reason).
   */
  attempt(s: S, settle: (value: T | undefined) => void): (reason: unknown) => void;
  after: After;
}

/**
 * The race, by callbacks. Entrants start one at a time: the next starts
 * when the running ones have failed, or beside a running one that exceeded
 * its `hedgeAfterMs` (unless the next is a last resort). A last resort
 * starts only when no other entrant is still trying. `done` is called once,
 * with the first value and its entrant (the others are stopped with
 * `HedgeLostError`), or undefined when every entrant failed. Returns what
 * ends the race at once (every attempt stopped with the reason; `done` is
 * not called).
 */
export function runHedgedRace<S, T>(init: HedgedRaceCore<S, T>, done: (won: { winner: S; value: T } | undefined) => void): (reason: unknown) => void {
  const { entrants } = init;
  let next = 0;
  let running = 0;
  let settled = false;
  const stops: Array<(reason: unknown) => void> = [];
  const cancels = new Set<() => void>();
  const end = () => {
    settled = true;
    for (const cancel of cancels) cancel();
    cancels.clear();
  };
  const lastResortNext = () => next < entrants.length && init.isLastResort(entrants[next]!);
  const launch = (): void => {
    if (settled) return;
    if (next >= entrants.length) {
      if (running === 0) {
        end();
        done(undefined);
      }
      return;
    }
    const s = entrants[next++]!;
    running++;
    const cancelHedge = init.after(init.hedgeAfterMs(s), () => {
      cancels.delete(cancelHedge);
      if (settled || next >= entrants.length || lastResortNext()) return;
      init.onHedge?.(s, entrants[next]!);
      launch();
    });
    cancels.add(cancelHedge);
    let answered = false;
    const k = stops.length;
    stops.push(() => undefined); // (its stop, once the attempt has started: it may settle at once)
    stops[k] = init.attempt(s, (value) => {
      if (answered) return;
      answered = true;
      cancelHedge();
      cancels.delete(cancelHedge);
      running--;
      if (value === undefined) {
        if (settled || (running > 0 && lastResortNext())) return;
        return launch();
      }
      if (settled) return;
      end();
      stops.forEach((other, j) => j !== k && other(new HedgeLostError()));
      done({ winner: s, value });
    });
  };
  launch();
  return (reason) => {
    if (settled) return;
    end();
    for (const stop of stops) stop(reason);
  };
}

/** `runHedgedRace` with promises: resolves as its `done` is called; aborting `signal` rejects with its reason. */
export function hedgedRace<S, T>(init: HedgedRaceInit<S, T>): Promise<{ winner: S; value: T } | undefined> {
  const { signal } = init;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const stopRace = runHedgedRace<S, T>({
      entrants: init.entrants, hedgeAfterMs: (s) => init.hedgeAfterMs(s), isLastResort: (s) => init.isLastResort(s),
      ...(init.onHedge ? { onHedge: (from: S, to: S) => init.onHedge!(from, to) } : {}),
      after: nodeAfter(),
      attempt: (s, settle) => {
        const ctl = new AbortController();
        init.attempt(s, AbortSignal.any([signal, ctl.signal])).then(settle, () => settle(undefined));
        return (reason) => ctl.abort(reason);
      },
    }, (won) => {
      signal.removeEventListener("abort", onAbort);
      resolve(won);
    });
    function onAbort() {
      stopRace(signal.reason);
      reject(signal.reason);
    }
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
