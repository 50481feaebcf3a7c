// `shoal supernode --registries`: the supernode connects only to registries on its list (by
// default the public ones), so a path naming any other host is refused before any connection.
import { createServer, type Server } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, startSupernode, type ShoalDaemon } from "@shoal/testkit";

const DIGEST = `sha256:${"ab".repeat(32)}`;
let work: string;
let bait: Server;
let baitPort: number;
let connections = 0;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-sn-registries-"));
  // a TCP port that only counts who connects (as an SSH daemon or a metadata service would sit there)
  bait = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => bait.listen(0, "127.0.0.1", r));
  baitPort = (bait.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => bait.close(r));
  await rm(work, { recursive: true, force: true });
});

async function withSupernode<T>(name: string, args: string[], fn: (url: string) => Promise<T>): Promise<T> {
  const port = await freePort();
  const sn: ShoalDaemon = await startSupernode(join(work, name), port, args);
  try {
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    await sn.stop();
  }
}

describe("shoal supernode --registries", () => {
  it("by default refuses a host that is not a public registry with 403, connecting nowhere", async () => {
    await withSupernode("default", [], async (url) => {
      for (const route of ["chunks", "index"]) {
        const res = await fetch(`${url}/v1/${route}/127.0.0.1:${baitPort}/x/y/${DIGEST}?first=0&last=0`);
        expect([route, res.status, ((await res.json()) as { code: string }).code]).toEqual([route, 403, "SHOAL_ERR_REGISTRY_NOT_ALLOWED"]);
      }
      const preheat = await fetch(`${url}/v1/preheat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: `127.0.0.1:${baitPort}/x/y:latest` }) });
      expect(preheat.status).toBe(403);
    });
    expect(connections).toBe(0);
  });

  it("connects to a registry it is told to allow", async () => {
    await withSupernode("allowed", ["--registries", `127.0.0.1:${baitPort}`], async (url) => {
      const res = await fetch(`${url}/v1/chunks/127.0.0.1:${baitPort}/x/y/${DIGEST}?first=0&last=0`);
      expect(res.status).toBeGreaterThanOrEqual(400); // the bait answers nothing useful
    });
    expect(connections).toBeGreaterThan(0);
  });
});
