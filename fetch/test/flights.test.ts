import { describe, expect, it } from "vitest";
import { Flights } from "../src/index.ts";

/** Work that finishes when told to, recording whether its signal aborted. */
function work() {
  let finish!: (v: string) => void;
  const state = { starts: 0, signal: undefined as AbortSignal | undefined };
  const start = (signal: AbortSignal) => {
    state.starts++;
    state.signal = signal;
    return new Promise<string>((resolve, reject) => {
      finish = resolve;
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  return { state, start, finish: (v: string) => finish(v) };
}

describe("Flights", () => {
  it("shares one piece of work among the askers of a key", async () => {
    const f = new Flights<string>();
    const w = work();
    const a = f.join("k", w.start);
    const b = f.join("k", w.start);
    expect(f.has("k")).toBe(true);
    w.finish("done");
    expect(await Promise.all([a, b])).toEqual(["done", "done"]);
    expect(w.state.starts).toBe(1);
    expect(f.has("k")).toBe(false);
  });

  it("stops the wait of an asker that aborts, and the work only once every asker has", async () => {
    const f = new Flights<string>();
    const w = work();
    const one = new AbortController();
    const two = new AbortController();
    const a = f.join("k", w.start, one.signal);
    const b = f.join("k", w.start, two.signal);
    one.abort(new Error("one left"));
    await expect(a).rejects.toThrow("one left");
    expect(w.state.signal!.aborted).toBe(false);
    two.abort(new Error("two left"));
    await expect(b).rejects.toThrow("two left");
    expect(w.state.signal!.aborted).toBe(true);
  });

  it("keeps the work going for an asker without a signal", async () => {
    const f = new Flights<string>();
    const w = work();
    const ac = new AbortController();
    const a = f.join("k", w.start, ac.signal);
    const b = f.join("k", w.start);
    ac.abort(new Error("gone"));
    await expect(a).rejects.toThrow("gone");
    expect(w.state.signal!.aborted).toBe(false);
    w.finish("kept");
    expect(await b).toBe("kept");
  });
});
