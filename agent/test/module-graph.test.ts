// What the running agent loads: with the swarm off, no libp2p and no supernode code (the agent
// imports neither); with a swarm key, libp2p (so the test can tell).
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import { startAgent, unmountAllUnder } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const HOOK = fileURLToPath(new URL("./fixtures/record-modules.mjs", import.meta.url));
const LIBP2P = /\/node_modules\/(libp2p|@libp2p|@chainsafe)\//;
const SUPERNODE = /\/supernode\/src\//;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-modules-"));
});
afterAll(async () => {
  await unmountAllUnder(work);
  await rm(work, { recursive: true, force: true });
});

/** The module URLs a `shoal agent ...args` resolved by the time it answered, then stopped. */
async function modulesOf(name: string, args: string[]): Promise<string[]> {
  const log = join(work, `${name}.modules`);
  const agent = await startAgent(join(work, name), ["--plain-http", ...args], { nodeArgs: ["--import", HOOK], env: { SHOAL_MODULE_LOG: log } });
  await agent.stop();
  return (await readFile(log, "utf8")).split("\n").filter(Boolean);
}

describe("the agent's module graph", () => {
  it("loads no libp2p and no supernode code with the swarm off, and libp2p with it on", async () => {
    const off = await modulesOf("off", []);
    expect(off.some((u) => u.includes("/agent/src/daemon/agent.ts"))).toBe(true);
    expect(off.filter((u) => LIBP2P.test(u))).toEqual([]);
    expect(off.filter((u) => SUPERNODE.test(u))).toEqual([]);
    const key = join(work, "swarm.key");
    await writeFile(key, formatSwarmKey(generateSwarmKey()));
    const on = await modulesOf("on", ["--swarm-key", key, "--p2p-listen", "/ip4/127.0.0.1/tcp/0"]);
    expect(on.some((u) => LIBP2P.test(u))).toBe(true);
    expect(on.filter((u) => SUPERNODE.test(u))).toEqual([]);
  });
});
