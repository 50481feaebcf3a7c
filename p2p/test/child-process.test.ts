import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChunkPeer, formatSwarmKey, generateSwarmKey, PeerNotFoundError, PeerUnavailableError } from "../src/index.ts";
import type { PeerAddress } from "../src/index.ts";
import { digestOf, MISSING_DIGEST, randomChunk } from "./helpers.ts";

const FIXTURE = join(import.meta.dirname, "fixtures", "serve-peer.ts");

describe("ChunkPeer across processes", () => {
  const key = generateSwarmKey();
  const chunks = [randomChunk(10), randomChunk(700 * 1024)];
  let dir: string;
  let child: ChildProcess | undefined;
  let remote: PeerAddress;
  const locals: ChunkPeer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "shoal-p2p-child-"));
    const keyPath = join(dir, "swarm.key");
    await writeFile(keyPath, formatSwarmKey(key), { mode: 0o600 });
    const chunkFiles = await Promise.all(
      chunks.map(async (c, i) => {
        const f = join(dir, `chunk-${i}`);
        await writeFile(f, c);
        return f;
      }),
    );
    const proc = spawn(process.execPath, [FIXTURE, keyPath, ...chunkFiles], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    child = proc;
    const line = await new Promise<string>((resolve, reject) => {
      const rl = createInterface({ input: proc.stdout! });
      rl.once("line", resolve);
      proc.once("exit", (code) => reject(new Error(`serve-peer exited with ${code}`)));
      setTimeout(() => reject(new Error("serve-peer did not start")), 30_000).unref();
    });
    remote = JSON.parse(line) as PeerAddress;
  });

  afterAll(async () => {
    await Promise.all(locals.map((p) => p.stop()));
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once("exit", r));
      child.stdin?.end();
      const t = setTimeout(() => child?.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("fetches chunks from a peer in another process", async () => {
    const local = new ChunkPeer({ provider: { readCompressed: async () => undefined } }, { swarmKey: key });
    locals.push(local);
    await local.start();
    const signal = AbortSignal.timeout(20_000);
    for (const c of chunks) expect(await local.fetchChunk(remote, digestOf(c), { signal })).toEqual(c);
    await expect(local.fetchChunk(remote, MISSING_DIGEST, { signal })).rejects.toBeInstanceOf(PeerNotFoundError);
  });

  it("refuses a process-external peer with another key", async () => {
    const outsider = new ChunkPeer({ provider: { readCompressed: async () => undefined } }, { swarmKey: generateSwarmKey() });
    locals.push(outsider);
    await outsider.start();
    const t0 = performance.now();
    await expect(outsider.fetchChunk(remote, digestOf(chunks[0]!), { signal: AbortSignal.timeout(5000) })).rejects.toBeInstanceOf(PeerUnavailableError);
    expect(performance.now() - t0).toBeLessThan(6000);
  });
});
