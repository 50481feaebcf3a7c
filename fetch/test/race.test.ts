import { describe, expect, it } from "vitest";
import { hedgedRace, HedgeLostError, runHedgedRace } from "../src/index.ts";

interface Entrant {
  name: string;
  /** ms before it answers, or "fail" after that many ms, or "hang". */
  after: number;
  fails?: boolean;
  hang?: boolean;
  lastResort?: boolean;
}

/** Run a race of `entrants`, recording who started and why each attempt ended. */
async function race(entrants: Entrant[], opts: { hedgeMs?: number; signal?: AbortSignal } = {}) {
  const started: string[] = [];
  const aborted = new Map<string, unknown>();
  const hedges: Array<[string, string]> = [];
  const result = await hedgedRace<Entrant, string>({
    entrants,
    signal: opts.signal ?? new AbortController().signal,
    hedgeAfterMs: () => opts.hedgeMs ?? 30,
    isLastResort: (e) => e.lastResort === true,
    onHedge: (a, b) => hedges.push([a.name, b.name]),
    attempt: (e, signal) => new Promise((resolve) => {
      started.push(e.name);
      const t = e.hang ? undefined : setTimeout(() => resolve(e.fails ? undefined : e.name), e.after);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        aborted.set(e.name, signal.reason);
        resolve(undefined);
      }, { once: true });
    }),
  });
  return { result, started, aborted, hedges };
}

describe("hedgedRace", () => {
  it("asks the first entrant, and no other when it answers in time", async () => {
    const r = await race([{ name: "a", after: 1 }, { name: "b", after: 1 }]);
    expect(r.result?.winner.name).toBe("a");
    expect(r.started).toEqual(["a"]);
  });

  it("starts the next beside a slow one; the first answer wins and the loser is aborted as a lost hedge", async () => {
    const r = await race([{ name: "slow", after: 0, hang: true }, { name: "fast", after: 1 }]);
    expect(r.result).toEqual({ winner: { name: "fast", after: 1 }, value: "fast" });
    expect(r.hedges).toEqual([["slow", "fast"]]);
    expect(r.aborted.get("slow")).toBeInstanceOf(HedgeLostError);
  });

  it("moves on when an entrant fails, and resolves undefined when all failed", async () => {
    const r = await race([{ name: "a", after: 1, fails: true }, { name: "b", after: 1, fails: true }], { hedgeMs: 10_000 });
    expect(r.result).toBeUndefined();
    expect(r.started).toEqual(["a", "b"]);
  });

  it("never starts a last resort as a hedge, nor while another entrant is still trying", async () => {
    const slow = await race([{ name: "slow", after: 120 }, { name: "origin", after: 1, lastResort: true }], { hedgeMs: 10 });
    expect(slow.result?.winner.name).toBe("slow");
    expect(slow.started).toEqual(["slow"]);
    // "a" fails while the hedge "b" still works: the origin waits for "b", which then answers
    const busy = await race([{ name: "a", after: 40, fails: true }, { name: "b", after: 120 }, { name: "origin", after: 1, lastResort: true }], { hedgeMs: 10 });
    expect(busy.result?.winner.name).toBe("b");
    expect(busy.started).toEqual(["a", "b"]);
    // once every other entrant failed, the last resort is asked
    const failed = await race([{ name: "a", after: 1, fails: true }, { name: "origin", after: 1, lastResort: true }], { hedgeMs: 10 });
    expect(failed.result?.winner.name).toBe("origin");
  });

  it("rejects with the signal's reason when the race is aborted, aborting every attempt", async () => {
    const ac = new AbortController();
    const reason = new Error("deadline");
    const p = race([{ name: "a", after: 0, hang: true }], { signal: ac.signal, hedgeMs: 10_000 });
    setTimeout(() => ac.abort(reason), 5);
    await expect(p).rejects.toBe(reason);
  });
});

describe("runHedgedRace (the core, on any clock)", () => {
  /** A clock that moves only when told. */
  function manualClock() {
    let now = 0;
    const due: Array<{ at: number; fn: () => void }> = [];
    return {
      after: (ms: number, fn: () => void) => {
        const t = { at: now + ms, fn };
        due.push(t);
        return () => {
          const i = due.indexOf(t);
          if (i >= 0) due.splice(i, 1);
        };
      },
      advance(ms: number) {
        now += ms;
        for (const t of due.filter((d) => d.at <= now).sort((a, b) => a.at - b.at)) {
          due.splice(due.indexOf(t), 1);
          t.fn();
        }
      },
    };
  }

  it("hedges on the given clock, stops the loser with HedgeLostError, and calls done once", () => {
    const clock = manualClock();
    const settles = new Map<string, (v: string | undefined) => void>();
    const stopped = new Map<string, unknown>();
    const results: unknown[] = [];
    runHedgedRace<string, string>({
      entrants: ["peer", "supernode"], hedgeAfterMs: () => 50, isLastResort: () => false, after: clock.after,
      attempt: (s, settle) => (settles.set(s, settle), (reason) => stopped.set(s, reason)),
    }, (won) => results.push(won));
    expect([...settles.keys()]).toEqual(["peer"]);
    clock.advance(49);
    expect([...settles.keys()]).toEqual(["peer"]);
    clock.advance(1);
    expect([...settles.keys()]).toEqual(["peer", "supernode"]);
    settles.get("supernode")!("bytes");
    settles.get("peer")!("late");
    expect(results).toEqual([{ winner: "supernode", value: "bytes" }]);
    expect(stopped.get("peer")).toBeInstanceOf(HedgeLostError);
    expect(stopped.has("supernode")).toBe(false);
  });

  it("takes an attempt that settles at once, and moves on at once from one that fails at once", () => {
    const clock = manualClock();
    const results: unknown[] = [];
    const asked: string[] = [];
    runHedgedRace<string, string>({
      entrants: ["busy", "free", "never"], hedgeAfterMs: () => 50, isLastResort: () => false, after: clock.after,
      attempt: (s, settle) => {
        asked.push(s);
        settle(s === "busy" ? undefined : s);
        return () => undefined;
      },
    }, (won) => results.push(won));
    expect(asked).toEqual(["busy", "free"]);
    expect(results).toEqual([{ winner: "free", value: "free" }]);
  });

  it("ends at once when stopped: every attempt stopped with the reason, done never called", () => {
    const clock = manualClock();
    const stopped: unknown[] = [];
    const results: unknown[] = [];
    const stop = runHedgedRace<string, string>({
      entrants: ["a", "b"], hedgeAfterMs: () => 10, isLastResort: () => false, after: clock.after,
      attempt: () => (reason) => stopped.push(reason),
    }, (won) => results.push(won));
    clock.advance(10);
    stop("gone");
    clock.advance(100);
    expect(stopped).toEqual(["gone", "gone"]);
    expect(results).toEqual([]);
  });
});
