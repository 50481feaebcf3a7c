// The status pages tell an operator which flag to set when a section is
// empty; every flag they name must exist on the daemon that serves them.
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { AGENT_SETTINGS } from "@shoal/agent/config";
import { describe, expect, it } from "vitest";
import { SUPERNODE_SETTINGS } from "../src/supernode-settings.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const flagsIn = async (page: string) => [...(await readFile(`${repo}/${page}`, "utf8")).matchAll(/--([a-z][a-z-]*)/g)].map((m) => m[1]!);

describe("status pages", () => {
  it.each([
    ["agent/web/page.js", AGENT_SETTINGS],
    ["supernode/web/page.js", SUPERNODE_SETTINGS],
  ] as const)("%s names only flags its daemon has", async (page, settings) => {
    const known = new Set(Object.values(settings).map((s) => s.flag));
    const named = await flagsIn(page);
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((f) => !known.has(f))).toEqual([]);
  });
});
