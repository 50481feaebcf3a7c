// The supernode's answer gate: background answers yield to those callers wait for, never for long.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AnswerGate, backgroundMayStart, BACKGROUND_SLOTS, MAX_BACKGROUND_WAIT_MS } from "../src/answer-gate.ts";

describe("backgroundMayStart", () => {
  it("lets a background answer start with no on-demand answer, within the slots beside them, or once it waited its longest", () => {
    expect(backgroundMayStart({ onDemand: 0, background: 100 }, 0)).toBe(true);
    expect(backgroundMayStart({ onDemand: 5, background: BACKGROUND_SLOTS - 1 }, 0)).toBe(true);
    expect(backgroundMayStart({ onDemand: 5, background: BACKGROUND_SLOTS }, 0)).toBe(false);
    expect(backgroundMayStart({ onDemand: 5, background: BACKGROUND_SLOTS }, MAX_BACKGROUND_WAIT_MS - 1)).toBe(false);
    expect(backgroundMayStart({ onDemand: 5, background: BACKGROUND_SLOTS }, MAX_BACKGROUND_WAIT_MS)).toBe(true);
  });
});

describe("AnswerGate", () => {
  beforeEach(() => void vi.useFakeTimers());
  afterEach(() => void vi.useRealTimers());

  /** A gate on the fake clock, and what it reported. */
  function gate() {
    const waits: number[] = [];
    return { g: new AnswerGate({ observer: { backgroundStarted: (ms) => waits.push(ms) }, now: () => Date.now() }), waits };
  }
  /** Background turns asked for now, and which have started. */
  function ask(g: AnswerGate, n: number, signal?: AbortSignal) {
    const started: Array<() => void> = [];
    const turns = Array.from({ length: n }, () => g.background(signal).then((end) => void started.push(end)));
    return { started, turns };
  }

  it("starts background answers at once when no answer is waited for", async () => {
    const { g, waits } = gate();
    const { started } = ask(g, BACKGROUND_SLOTS + 3);
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toHaveLength(BACKGROUND_SLOTS + 3);
    expect(waits.every((w) => w === 0)).toBe(true);
  });

  it("beside an on-demand answer, sends the slots' worth and starts the next, oldest first, when one ends", async () => {
    const { g, waits } = gate();
    const endDemand = g.onDemand();
    const { started } = ask(g, BACKGROUND_SLOTS + 2);
    await vi.advanceTimersByTimeAsync(100);
    expect(started).toHaveLength(BACKGROUND_SLOTS);
    expect(g.stats()).toEqual({ onDemand: 1, background: BACKGROUND_SLOTS, waiting: 2 });
    started[0]!();
    started[0]!(); // a second call is nothing
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toHaveLength(BACKGROUND_SLOTS + 1);
    expect(g.stats().waiting).toBe(1);
    endDemand();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toHaveLength(BACKGROUND_SLOTS + 2);
    expect(waits.slice(BACKGROUND_SLOTS)).toEqual([100, 100]);
  });

  it("takes its slots from its settings: 0 holds no background answer back", async () => {
    const off = new AnswerGate({}, { slots: 0 });
    off.onDemand();
    const some = ask(off, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(some.started).toHaveLength(5);
    const three = new AnswerGate({}, { slots: 3 });
    three.onDemand();
    const more = ask(three, 5);
    await vi.advanceTimersByTimeAsync(0);
    expect(more.started).toHaveLength(3);
    expect(backgroundMayStart({ onDemand: 1, background: 1000 }, 0, 0)).toBe(true);
  });

  it("never keeps a background answer waiting past its longest wait", async () => {
    const { g, waits } = gate();
    g.onDemand();
    const { started } = ask(g, BACKGROUND_SLOTS + 1);
    await vi.advanceTimersByTimeAsync(MAX_BACKGROUND_WAIT_MS - 1);
    expect(started).toHaveLength(BACKGROUND_SLOTS);
    await vi.advanceTimersByTimeAsync(1);
    expect(started).toHaveLength(BACKGROUND_SLOTS + 1);
    expect(waits.at(-1)).toBe(MAX_BACKGROUND_WAIT_MS);
    expect(g.stats()).toEqual({ onDemand: 1, background: BACKGROUND_SLOTS + 1, waiting: 0 });
  });

  it("lets a caller who goes away leave the queue, and one already gone never take a turn", async () => {
    const { g } = gate();
    g.onDemand();
    ask(g, BACKGROUND_SLOTS);
    const ac = new AbortController();
    const left = g.background(ac.signal);
    await vi.advanceTimersByTimeAsync(10);
    expect(g.stats().waiting).toBe(1);
    ac.abort(new Error("caller gone"));
    await expect(left).rejects.toThrow("caller gone");
    expect(g.stats().waiting).toBe(0);
    await vi.advanceTimersByTimeAsync(MAX_BACKGROUND_WAIT_MS);
    expect(g.stats().background).toBe(BACKGROUND_SLOTS);
    await expect(g.background(ac.signal)).rejects.toThrow("caller gone");
  });
});
