// An agent whose start fails half way closes what it opened: its FUSE session is not left mounted,
// and its control socket does not linger.
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { callAgent } from "@shoal/agent/client";
import { runShoal, startAgent, unmountAllUnder } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMountpoint } from "../src/fs/index.ts";

let work: string;
let busy: Server;
let port: number;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-start-fail-"));
  busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  port = (busy.address() as { port: number }).port;
});
afterAll(async () => {
  busy.close();
  await unmountAllUnder(work);
  await rm(work, { recursive: true, force: true });
});

describe("an agent that cannot start", () => {
  it("fails with one line, leaving no FUSE mount and no control socket behind", async () => {
    const root = join(work, "root");
    // the metrics listener is the last part to start: the database, store, FUSE session and API are open by then
    const r = await runShoal(["agent", "--root", root, "--plain-http", "--metrics-listen", `127.0.0.1:${port}`], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^shoal: .*EADDRINUSE.* \[SHOAL_ERR_[A-Z_]+\]$/m);
    expect(await isMountpoint(join(root, "layers"))).toBe(false);
    expect(await isMountpoint(join(root, "layers-plain"))).toBe(false);
    expect(existsSync(join(root, "agent.sock"))).toBe(false);
  });

  it("a second agent on a root another agent holds says so in one line, and the first goes on", async () => {
    const root = join(work, "held");
    const first = await startAgent(root, ["--plain-http"]);
    try {
      const r = await runShoal(["agent", "--root", root, "--plain-http"], { timeoutMs: 60_000 });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^shoal: another agent holds .*held.* \[SHOAL_ERR_ROOT_IN_USE\]$/m);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(existsSync(join(root, "agent.sock"))).toBe(true);
      expect(await callAgent(root, "GET", "/v1/status")).toHaveProperty("layers");
    } finally {
      await first.stop();
    }
  });
});
