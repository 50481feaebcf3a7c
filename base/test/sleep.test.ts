import { describe, expect, it } from "vitest";
import { nodeAfter, sleep } from "../src/index.ts";

describe("sleep", () => {
  it("waits a delay longer than one timer takes, rather than firing at once", async () => {
    const ac = new AbortController();
    let settled = false;
    const long = sleep(2 ** 31 + 1000, ac.signal).then(() => (settled = true), () => "aborted");
    await sleep(50);
    expect(settled).toBe(false);
    const reason = new Error("done waiting");
    ac.abort(reason);
    expect(await long).toBe("aborted");
  });

  it("rejects with the signal's own reason", async () => {
    const reason = new Error("why");
    await expect(sleep(10_000, AbortSignal.abort(reason))).rejects.toBe(reason);
  });
});

describe("nodeAfter", () => {
  it("calls back after the delay, not once cancelled", async () => {
    const after = nodeAfter({ unref: true });
    const called: string[] = [];
    after(10, () => called.push("kept"));
    const cancel = after(10, () => called.push("cancelled"));
    cancel();
    await sleep(50);
    expect(called).toEqual(["kept"]);
  });
});
