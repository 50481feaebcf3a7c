// An API thread that dies is started again: its port answers again. The thread is killed the way a
// bug would kill it, an answer it cannot write (an HTTP status below 100 throws in the thread).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listenTcp } from "@shoal/service";
import { waitFor } from "@shoal/testkit";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiThreads } from "../src/api-threads.ts";

describe("ApiThreads", () => {
  let dir: string;
  let threads: ApiThreads | undefined;
  let base: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "shoal-api-threads-"));
    // the port, bound for sharing, as the supernode binds it; the thread takes it over
    const placeholder = createServer();
    const bound = await listenTcp(placeholder, { host: "127.0.0.1", port: 0 }, { reusePort: true });
    base = `http://127.0.0.1:${bound.port}`;
    threads = await ApiThreads.start({
      handler: (_req, res) => void res.writeHead(204).end(),
      answerChunks: async (req, _url, _signal, sink) => {
        sink.head(req.url?.includes("bad-status") ? 99 : 200, { "content-length": 2 });
        await sink.write(Buffer.from("ok"));
        sink.end();
      },
      logger: pino({ level: "silent" }),
    }, { threads: 1, host: "127.0.0.1", port: bound.port, socketPath: join(dir, "api.sock") });
    await new Promise((r) => placeholder.close(r));
  });
  afterAll(async () => {
    await threads?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("starts a thread that died again, and its port answers again", async () => {
    const ok = async () => {
      const res = await fetch(`${base}/v1/chunks/r/a/sha256:x?first=0&last=0`);
      return res.status === 200 && (await res.text()) === "ok";
    };
    expect(await ok()).toBe(true);
    expect((await fetch(`${base}/v1/health`)).status).toBe(204);
    // the only thread dies with this caller's connection
    await expect(fetch(`${base}/v1/chunks/r/a/sha256:x?first=0&last=0&bad-status`).then((r) => r.text())).rejects.toThrow();
    await waitFor("a thread listening again", async () => ((await ok().catch(() => false)) ? true : undefined), 10_000);
    expect((await fetch(`${base}/v1/health`)).status).toBe(204);
  });
});
