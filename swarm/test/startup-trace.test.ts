import { BadRequestError } from "@shoal/base";
import { describe, expect, it } from "vitest";
import { MAX_TRACE_RANGES, parseStartupTrace, TraceRecorder } from "../src/index.ts";

const D = (c: string) => `sha256:${c.repeat(64)}`;

describe("startup traces", () => {
  it("records reads as ranges in first-read order, extending a layer's latest range when a read continues it", () => {
    const r = new TraceRecorder();
    expect(r.empty).toBe(true);
    r.read(D("a"), 0, 4096);
    r.read(D("a"), 4096, 4096); // continues
    r.read(D("b"), 100, 10);
    r.read(D("a"), 1000, 10); // inside a's latest
    r.read(D("a"), 1 << 20, 4096); // elsewhere
    r.read(D("b"), 105, 20); // overlaps b's latest
    r.read(D("b"), 0, 0); // nothing
    const t = r.trace(D("f"));
    expect(t).toEqual({ version: 1, image: D("f"), layers: [D("a"), D("b")], ranges: [[0, 0, 8192], [1, 100, 25], [0, 1 << 20, 4096]] });
    expect(parseStartupTrace(JSON.parse(JSON.stringify(t)))).toEqual(t);
  });

  it("stops recording at the bound", () => {
    const r = new TraceRecorder();
    for (let i = 0; i < MAX_TRACE_RANGES + 10; i++) r.read(D("a"), i * 100, 10);
    expect(r.trace(D("f")).ranges).toHaveLength(MAX_TRACE_RANGES);
  });

  it("refuses what is not a trace, naming what is wrong", () => {
    const good = { version: 1, image: D("f"), layers: [D("a")], ranges: [[0, 0, 10]] };
    expect(parseStartupTrace(good)).toEqual(good);
    const bad: Array<[unknown, RegExp]> = [
      [null, /JSON object/],
      [{ ...good, version: 2 }, /version/],
      [{ ...good, image: "latest" }, /manifest digest/],
      [{ ...good, layers: ["x"] }, /layer 0/],
      [{ ...good, layers: [D("a"), D("a")] }, /twice/],
      [{ ...good, ranges: [[1, 0, 10]] }, /range 0/],
      [{ ...good, ranges: [[0, 0, 0]] }, /range 0/],
      [{ ...good, ranges: [[0, -1, 10]] }, /range 0/],
      [{ ...good, ranges: [[0, 0.5, 10]] }, /range 0/],
      [{ ...good, ranges: [[0, 0]] }, /range 0/],
      [{ ...good, ranges: Array.from({ length: MAX_TRACE_RANGES + 1 }, () => [0, 0, 1]) }, /at most/],
    ];
    for (const [body, why] of bad) {
      expect(() => parseStartupTrace(body), JSON.stringify(body)?.slice(0, 80)).toThrow(BadRequestError);
      expect(() => parseStartupTrace(body)).toThrow(why);
    }
  });
});
