import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectedFiles, listChunkFiles, makeChunk, openStore, removeDir, tempDir, type TestChunk } from "./helpers.ts";

const WRITER = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
const TOTAL = 2000;
const ROUNDS = 8;

let dir: string;
beforeAll(async () => {
  dir = await tempDir("shoal-crash-");
});
afterAll(async () => {
  await removeDir(dir);
});

interface Run {
  acked: Set<number>;
  finished: boolean;
}

/** Run the writer, SIGKILL it `killAfterMs` after it is ready; resolve with what it acknowledged. */
function runWriter(root: string, dbPath: string, first: number, capacity: number, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, root, dbPath, String(first), String(TOTAL - first), String(capacity)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const acked = new Set<number>();
    let out = "";
    let err = "";
    let finished = false;
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const lines = out.split("\n");
      out = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "ready") setTimeout(() => child.kill("SIGKILL"), killAfterMs);
        else if (line === "done") finished = true;
        else if (line.startsWith("ok ")) acked.add(Number(line.slice(3)));
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL" && code !== 0) reject(new Error(`writer exited ${code}: ${err}`));
      else resolve({ acked, finished });
    });
  });
}

describe("ChunkStore crash safety", () => {
  it("never shows a torn chunk after SIGKILL at random moments", async () => {
    const root = path.join(dir, "root");
    const dbPath = path.join(dir, "db");
    const byDigest = new Map<string, TestChunk>();
    for (let i = 0; i < TOTAL; i++) {
      const c = makeChunk(i);
      byDigest.set(c.digest, c);
    }
    let interrupted = 0;
    const acked: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Even rounds: unbounded, so every acknowledged put must survive. Odd rounds: constant eviction.
      const evicting = round % 2 === 1;
      const capacity = evicting ? 400 * 1024 : 10 * 1024 ** 3;
      const first = Math.floor(Math.random() * (TOTAL / 2));
      const killAfter = 30 + Math.floor(Math.random() * 400);
      const run = await runWriter(root, dbPath, first, capacity, killAfter);
      acked.push(run.acked.size);
      expect(run.finished, "writer finished before it was killed; raise TOTAL").toBe(false);

      const before = await listChunkFiles(root);
      if (before.some((f) => f.includes(".tmp-"))) interrupted++;

      const s = await openStore(dbPath, { root, capacityBytes: capacity });
      try {
        const present = s.store.digests();
        for (const d of present) {
          const c = byDigest.get(d);
          expect(c, `unknown chunk ${d}`).toBeDefined();
          expect(await s.store.readRaw(d, 0, 1 << 20), `raw of chunk ${c!.index}`).toEqual(c!.raw);
          expect(await s.store.readCompressed(d), `compressed of chunk ${c!.index}`).toEqual(c!.compressed);
        }
        expect(await listChunkFiles(root)).toEqual(expectedFiles(present));
        if (!evicting) {
          const has = new Set(present);
          const lost = [...run.acked].filter((i) => !has.has(makeChunk(i).digest));
          expect(lost, `acknowledged puts lost in round ${round}`).toEqual([]);
        }
      } finally {
        await s.close();
      }
    }
    // Not asserted (kill timing is random), but shows the test hits the interesting windows.
    console.log(`crash test: puts acknowledged per round ${acked.join(",")}; ${interrupted} rounds interrupted mid-write`);
    expect(acked.filter((a) => a > 0).length, "the writer must get some puts done before most kills").toBeGreaterThan(ROUNDS / 2);
  });
});
