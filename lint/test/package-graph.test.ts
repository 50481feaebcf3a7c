// The lint rules that keep the house in shape: the package graph, and library code raising only shoal errors.
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";
// @ts-expect-error -- a plain JS module (the ESLint config loads it); its table is typed below
import { PACKAGES as GRAPH } from "../package-graph.js";

const PACKAGES = GRAPH as Record<string, { floor: number; imports: string[]; lazy?: string[] }>;

const ROOT = resolve(import.meta.dirname, "../..");
const eslint = new ESLint({ cwd: ROOT });

/** The messages ESLint gives `code` as if it were the file `path` of the repository. */
async function lint(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

describe("the package graph", () => {
  it("refuses library imports the graph does not allow", async () => {
    expect(await lint("agent/src/x.ts", `import { createSupernode } from "@shoal/supernode";\nexport const x = createSupernode;\n`))
      .toEqual([expect.stringMatching(/shoal\/package-graph: agent may not import @shoal\/supernode/)]);
    expect(await lint("fetch/src/x.ts", `import { ChunkStore } from "@shoal/store";\nexport const x = ChunkStore;\n`))
      .toEqual([expect.stringMatching(/fetch may not import @shoal\/store/)]);
    expect(await lint("blockindex/src/x.ts", `import { RegistryClient } from "@shoal/oci";\nexport const x = RegistryClient;\n`))
      .toEqual([expect.stringMatching(/blockindex may not import @shoal\/oci/)]);
  });

  it("allows what the graph allows, and the agent's libp2p only lazily", async () => {
    expect(await lint("agent/src/x.ts", `import { Fetcher } from "@shoal/fetch";\nexport const x = Fetcher;\n`)).toEqual([]);
    expect(await lint("agent/src/x.ts", `export async function f() { return (await import("@shoal/p2p")).ChunkPeer; }\n`)).toEqual([]);
    expect(await lint("agent/src/x.ts", `import { ChunkPeer } from "@shoal/p2p";\nexport const x = ChunkPeer;\n`))
      .toEqual([expect.stringMatching(/agent loads @shoal\/p2p only when it is needed/)]);
  });

  it("lets tests import lower floors and the testkit, not higher ones", async () => {
    expect(await lint("supernode/test/x.test.ts", `import { Fetcher } from "@shoal/fetch";\nimport { startRegistry } from "@shoal/testkit";\nexport const x = [Fetcher, startRegistry];\n`)).toEqual([]);
    expect(await lint("fetch/test/x.test.ts", `import { createAgent } from "@shoal/agent";\nexport const x = createAgent;\n`))
      .toEqual([expect.stringMatching(/fetch may not import @shoal\/agent/)]);
  });

  it("refuses relative paths into another package, exports that do not exist, and undeclared dependencies", async () => {
    expect(await lint("bench/src/x.ts", `import { callAgent } from "../../agent/src/client.ts";\nexport const x = callAgent;\n`))
      .toEqual([expect.stringMatching(/reaches into agent\/ by a relative path/)]);
    expect(await lint("cli/src/x.ts", `import { x } from "@shoal/agent/daemon";\nexport const y = x;\n`))
      .toEqual([expect.stringMatching(/@shoal\/agent does not export .\/daemon/)]);
    expect(await lint("fetch/src/x.ts", `import leftPad from "left-pad";\nexport const x = leftPad;\n`))
      .toEqual([expect.stringMatching(/fetch\/package.json does not declare left-pad/)]);
  });

  it("places every workspace package on a floor, and every package exports files that exist", () => {
    const workspaces = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { workspaces: string[] }).workspaces;
    expect([...workspaces].sort()).toEqual(Object.keys(PACKAGES).sort());
    for (const [name, row] of Object.entries(PACKAGES)) {
      for (const dep of row.imports) expect(PACKAGES[dep]!.floor, `${name} -> ${dep}`).toBeLessThan(row.floor);
      const m = JSON.parse(readFileSync(join(ROOT, name, "package.json"), "utf8")) as { name: string; exports?: Record<string, string>; bin?: Record<string, string> };
      expect(m.name).toBe(`@shoal/${name}`);
      for (const target of [...Object.values(m.exports ?? {}), ...Object.values(m.bin ?? {})]) expect(existsSync(join(ROOT, name, target)), `${name}: ${target}`).toBe(true);
    }
  });
});

describe("library code raises shoal errors only", () => {
  it("refuses a plain Error or an error class outside the set in src/, and allows them in tests", async () => {
    expect(await lint("fetch/src/x.ts", `export function f(): never { throw new Error("boom"); }\n`)).toEqual([expect.stringMatching(/no-restricted-syntax: library code raises ShoalError/)]);
    expect(await lint("oci/src/x.ts", `export class MyError extends Error {}\n`)).toEqual([expect.stringMatching(/error classes extend ShoalError/)]);
    expect(await lint("oci/src/x.ts", `import { ShoalError } from "@shoal/base";\nexport function f(): never { throw new ShoalError("SHOAL_ERR_BUSY", "busy"); }\n`)).toEqual([]);
    expect(await lint("oci/test/x.test.ts", `export function f(): never { throw new Error("boom"); }\n`)).toEqual([]);
  });
});
