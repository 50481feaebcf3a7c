// Startup traces the fleet shares: the first host to run an image sends what its first seconds read
// to the supernode; a later host prefetches exactly that first. Real registry, supernode and agents.
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  busyboxImage, freePort, pushLayout, runShoal, startAgent, startDelayProxy, startRegistry, startSupernode, unmountAllUnder, waitFor, writeImageLayout,
  type DelayProxy, type RunningAgent, type RunningRegistry, type ShoalDaemon,
} from "@shoal/testkit";
import { callAgent } from "@shoal/agent/client";
import type { AgentStatus } from "../src/index.ts";

const MiB = 1 << 20;
/** Where the first host reads the big file: spread so that no 4 MiB window of the background stream's burst holds them all. */
const READS = [1 * MiB, 7 * MiB, 13 * MiB].map((offset) => ({ offset, length: 100_000 }));

let registry: RunningRegistry;
let work: string;
let supernode: ShoalDaemon;
let supernodeHost: string;
let image: string;
let manifestDigest: string;
const agents: RunningAgent[] = [];
const proxies: DelayProxy[] = [];

async function agent(name: string, supernodeUrl: string, extra: string[]): Promise<RunningAgent> {
  const a = await startAgent(join(work, name), ["--plain-http", "--supernode", supernodeUrl, ...extra]);
  agents.push(a);
  return a;
}

async function mount(a: RunningAgent, name: string): Promise<string> {
  const dir = join(work, `mnt-${name}`);
  await mkdir(dir, { recursive: true });
  await callAgent(a.root, "POST", "/v1/mounts", { image, mountpoint: dir });
  return dir;
}

/** The first work: the script, and three spread pieces of the big file. */
async function firstWork(dir: string): Promise<Buffer[]> {
  const out = [await readFile(join(dir, "app/run.sh"))];
  const h = await open(join(dir, "app/data.bin"));
  try {
    for (const r of READS) {
      const b = Buffer.alloc(r.length);
      expect((await h.read(b, 0, r.length, r.offset)).bytesRead).toBe(r.length);
      out.push(b);
    }
  } finally {
    await h.close();
  }
  return out;
}

const status = (a: RunningAgent) => callAgent<AgentStatus>(a.root, "GET", "/v1/status");
const traceUrl = () => `http://${supernodeHost}/v1/traces/${registry.host}/trace/app/${manifestDigest}`;

/** A front of the supernode counting chunk requests (and answering traces with `trace`, when given). */
async function front(trace?: () => string): Promise<DelayProxy> {
  const p = await startDelayProxy({
    target: supernodeHost, held: /^\/v1\/(chunks|blobs)\//,
    ...(trace ? { answer: (method: string, path: string) => (method === "GET" && path.startsWith("/v1/traces/") ? { status: 200, body: trace() } : undefined) } : {}),
  });
  proxies.push(p);
  return p;
}

/** Waits until no chunk request reached `p` for a second (the background stream spent its burst). */
async function quiet(p: DelayProxy): Promise<void> {
  let last = -1;
  await waitFor("the background stream to go quiet", async () => {
    const n = p.blobRequests;
    if (n === last) return true;
    last = n;
    await new Promise((r) => setTimeout(r, 1000));
    return p.blobRequests === n ? true : undefined;
  }, 30_000);
}

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-trace-e2e-"));
  const layout = await writeImageLayout(join(work, "src"), busyboxImage({ dataBytes: 16 * MiB, marker: "trace" }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/trace/app:v1`);
  image = `${registry.host}/trace/app:lazy`;
  const conv = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "65536", `${registry.host}/trace/app:v1`, image]);
  expect(conv.code, conv.stderr).toBe(0);
  const port = await freePort();
  supernode = await startSupernode(join(work, "supernode"), port, ["--registries", registry.host]);
  supernodeHost = `127.0.0.1:${port}`;
}, 180_000);

afterAll(async () => {
  if (work) await unmountAllUnder(work);
  await Promise.allSettled(agents.map((a) => a.stop()));
  await Promise.allSettled(proxies.map((p) => p.stop()));
  await supernode?.stop();
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("startup traces shared through the supernodes", () => {
  let expected: Buffer[];

  it("the first host sends its trace; a fresh host prefetches it first, so its first work makes no fetch", async () => {
    // a window far past the wait below: the unmount ends it, so the trace holds the whole first work however slow the machine
    const first = await agent("first", `http://${supernodeHost}`, ["--prefetch", "off", "--startup-window", "10m"]);
    const firstDir = await mount(first, "first");
    expected = await firstWork(firstDir);
    manifestDigest = (await status(first)).images[0]!.digest;
    await callAgent(first.root, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(firstDir)}`);
    await waitFor("the supernode to hold the trace", async () => ((await fetch(traceUrl())).status === 200 ? true : undefined), 30_000);

    // the later host: its background stream throttled to a standstill past its burst, so only the startup chunks move
    const p = await front();
    const later = await agent("later", `http://${p.host}`, ["--prefetch", "on", "--prefetch-rate", "1"]);
    const dir = await mount(later, "later");
    const s = await waitFor("the startup chunks", async () => {
      const img = (await status(later)).images[0];
      return img?.prefetch?.startupDone ? img : undefined;
    }, 30_000);
    expect(s.startup).toBe("fleet");
    expect(s.prefetch!.startupChunks).toBeGreaterThan(0);
    await quiet(p);
    p.reset();
    expect(await firstWork(dir)).toEqual(expected);
    expect(p.blobRequests).toBe(0);
  });

  it("a fresh host without the trace misses on the same work (the test above can fail)", async () => {
    const p = await front(() => "");
    const cold = await agent("cold", `http://${p.host}`, ["--prefetch", "on", "--prefetch-rate", "1"]);
    const dir = await mount(cold, "cold");
    await waitFor("the prefetch to start", async () => ((await status(cold)).images[0]?.prefetch?.startupDone ? true : undefined), 30_000);
    await quiet(p);
    p.reset();
    expect(await firstWork(dir)).toEqual(expected);
    expect(p.blobRequests).toBeGreaterThan(0);
  });

  it("ignores a corrupt trace, and a well-formed one of another image; the mount and reads are unharmed", async () => {
    const good = await (await fetch(traceUrl())).json() as { image: string };
    const lies = [
      "{ not json",
      JSON.stringify({ version: 1, image: good.image, layers: ["not a digest"], ranges: [[0, 0, 10]] }),
      JSON.stringify({ ...good, image: `sha256:${"ab".repeat(32)}` }),
    ];
    for (const [k, lie] of lies.entries()) {
      const p = await front(() => lie);
      const a = await agent(`liar-${k}`, `http://${p.host}`, ["--prefetch", "on", "--prefetch-rate", "1"]);
      const dir = await mount(a, `liar-${k}`);
      const s = await waitFor("the prefetch to start", async () => {
        const img = (await status(a)).images[0];
        return img?.prefetch?.startupDone ? img : undefined;
      }, 30_000);
      expect(s.startup).toBe("none");
      expect(s.prefetch!.startupChunks).toBe(0);
      expect(await firstWork(dir)).toEqual(expected);
    }
  });

  it("the supernode refuses a trace of another image, one naming a layer the repository lacks, and keeps the first", async () => {
    const good = await (await fetch(traceUrl())).json() as { image: string; layers: string[]; ranges: unknown[] };
    const put = (body: unknown) => fetch(traceUrl(), { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const other = await put({ ...good, image: `sha256:${"cd".repeat(32)}` });
    expect(other.status).toBe(400);
    expect(((await other.json()) as { code: string }).code).toBe("SHOAL_ERR_BAD_REQUEST");
    const foreign = await put({ ...good, layers: [`sha256:${"ef".repeat(32)}`], ranges: [[0, 0, 100]] });
    expect(foreign.status).toBe(404);
    const again = await put(good);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({ stored: false });
  });
});
