import { describe, expect, it } from "vitest";
import { Lifecycle, type Component } from "../src/index.ts";

function part(name: string, log: string[], opts: { failStart?: boolean; failStop?: boolean } = {}): Component {
  return {
    async start() {
      if (opts.failStart) throw new Error(`${name} cannot start`);
      log.push(`start ${name}`);
    },
    async stop() {
      log.push(`stop ${name}`);
      if (opts.failStop) throw new Error(`${name} cannot stop`);
    },
  };
}

describe("Lifecycle", () => {
  it("stops what it started, newest first, once, even when one stop fails", async () => {
    const log: string[] = [];
    const life = new Lifecycle();
    await life.start("a", part("a", log));
    life.defer("b", () => log.push("stop b"));
    await life.start("c", part("c", log, { failStop: true }));
    await Promise.all([life.close(), life.close()]);
    expect(log).toEqual(["start a", "start c", "stop c", "stop b", "stop a"]);
  });

  it("closes what a half-finished start opened, and rethrows", async () => {
    const log: string[] = [];
    const life = new Lifecycle();
    const started = life.build(async (l) => {
      await l.start("a", part("a", log));
      await l.start("b", part("b", log));
      await l.start("c", part("c", log, { failStart: true }));
      return "never";
    });
    await expect(started).rejects.toThrow("c cannot start");
    expect(log).toEqual(["start a", "start b", "stop b", "stop a"]);
  });
});
