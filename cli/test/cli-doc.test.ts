import { readFileSync } from "node:fs";
import { runShoal } from "@shoal/testkit";
import { describe, expect, it } from "vitest";
import { cliReference } from "../src/program.ts";

describe("docs/cli.md", () => {
  it("is the commands' own help (regenerate with npm run cli-doc)", () => {
    expect(readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8")).toBe(cliReference());
  });

  it("matches what the real shoal prints for --help", async () => {
    const doc = readFileSync(new URL("../../docs/cli.md", import.meta.url), "utf8");
    for (const args of [["--help"], ["agent", "--help"], ["convert", "--help"], ["preheat", "--help"]]) {
      const r = await runShoal(args);
      expect(r.code, r.stderr).toBe(0);
      expect(doc).toContain(r.stdout.toString().trimEnd());
    }
  });
});
