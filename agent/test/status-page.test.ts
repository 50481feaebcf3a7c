// The status pages, in headless Chromium: a supernode and two agents, an image mounted and read;
// each page is opened, waited on until it shows live data, and what it shows is checked against
// the API (shoal status's JSON, the tracker, the preheat jobs); the agent page follows a further
// read. The page's data needs the agent's token, and a caller without a private registry's
// credentials sees no private image names. Screenshots go to the work dir and, with
// SHOAL_SCREENSHOT_DIR set, there too (docs/ holds the committed ones).
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callAgent, type AgentStatus } from "@shoal/agent/client";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import {
  busyboxImage, freePort, launchChromium, pushLayout, runShoal, startAgent, startRegistry, startSupernode, unmountAllUnder, waitFor, writeImageLayout,
  type Browser, type BrowserPage, type RunningAgent, type RunningRegistry, type ShoalDaemon,
} from "@shoal/testkit";

const user = "page-user";
const password = "s3cret-Page-Passw0rd";
const basic = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

let work: string;
let open: RunningRegistry;
let priv: RunningRegistry;
let supernode: ShoalDaemon | undefined;
let supernodeUrl: string;
let supernodePageUrl: string;
let browser: Browser | undefined;
const agents: RunningAgent[] = [];
let publicRef: string;
let privateRef: string;
/** A docker config with the private registry's credentials, as on a host. */
let docker: string;

async function startShoalAgent(name: string, keyFile: string): Promise<RunningAgent> {
  const a = await startAgent(join(work, name), [
    "--plain-http", "--prefetch", "off", "--supernode", supernodeUrl, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0",
    "--metrics-listen", "127.0.0.1:0", "--fuse-keeper", "off",
  ]);
  agents.push(a);
  return a;
}

const status = (a: RunningAgent) => callAgent<AgentStatus>(a.root, "GET", "/v1/status");

/** What the agent page shows, read from its DOM. */
interface AgentView {
  updates: number;
  images: Array<{ digest: string; local: number; total: number }>;
  sources: Record<string, number>;
  peers: Array<{ peerId: string; up: number; down: number }>;
  mounts: string[];
}

const AGENT_VIEW = `(() => {
  const all = (sel) => [...document.querySelectorAll(sel)];
  return {
    updates: Number(document.body.dataset.updates ?? 0),
    images: all("tr").filter((r) => r.querySelector("[data-k=image]")).map((r) => {
      const bar = r.querySelector("[data-k=image-chunks]");
      return { digest: r.querySelector("[data-k=image]").dataset.digest, local: Number(bar.dataset.local), total: Number(bar.dataset.total) };
    }),
    sources: Object.fromEntries(all("[data-k=series]").map((li) => [li.dataset.key, Number(li.querySelector("[data-k=series-total]").dataset.v)])),
    peers: all("tr").filter((r) => r.querySelector("[data-k=peer]")).map((r) => ({
      peerId: r.querySelector("[data-k=peer]").dataset.peer, up: Number(r.querySelector("[data-k=peer-up]").dataset.v), down: Number(r.querySelector("[data-k=peer-down]").dataset.v),
    })),
    mounts: all("[data-k=mount]").map((e) => e.textContent),
  };
})()`;

/** The page's view as it should be, from the API. */
function expectedView(s: AgentStatus): Omit<AgentView, "updates"> {
  return {
    images: s.images.map((i) => ({ digest: i.digest, local: i.chunksLocal, total: i.chunksTotal })),
    sources: { store: s.sources.cache?.bytes ?? 0, peer: s.sources.peer?.bytes ?? 0, supernode: s.sources.supernode?.bytes ?? 0, origin: s.sources.origin?.bytes ?? 0 },
    peers: (s.p2p?.peers ?? []).map((p) => ({ peerId: p.peerId, up: p.bytesUp, down: p.bytesDown })),
    mounts: s.mounts.map((m) => m.mountpoint),
  };
}

/** Wait until the page shows what the API says (the agent idle meanwhile, so both hold still), polling both. */
async function pageMatchesApi(page: BrowserPage, a: RunningAgent): Promise<AgentView> {
  let last: unknown;
  return waitFor("the agent page to show what the API shows", async () => {
    const before = expectedView(await status(a));
    const view = await page.evaluate<AgentView>(AGENT_VIEW);
    const after = expectedView(await status(a));
    const { updates: _u, ...shown } = view;
    last = { shown, api: after };
    if (JSON.stringify(before) !== JSON.stringify(after)) return undefined; // the agent moved meanwhile
    return JSON.stringify(shown) === JSON.stringify(after) ? view : undefined;
  }, 30_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${JSON.stringify(last)}`);
  });
}

async function screenshot(page: BrowserPage, name: string): Promise<void> {
  await page.screenshot(join(work, name));
  const dir = process.env.SHOAL_SCREENSHOT_DIR;
  if (dir) await copyFile(join(work, name), join(dir, name));
  expect((await readFile(join(work, name))).subarray(1, 4).toString()).toBe("PNG");
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-status-page-"));
  open = await startRegistry();
  priv = await startRegistry({ htpasswd: { user, password } });
  const layout = await writeImageLayout(join(work, "src"), busyboxImage({ dataBytes: 2 << 20, marker: "page" }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${open.host}/shop/frontend:v1`);
  publicRef = `${open.host}/shop/frontend:lazy`;
  const conv = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "65536", `${open.host}/shop/frontend:v1`, publicRef]);
  expect(conv.code, conv.stderr).toBe(0);
  // the same image, private: pushed and converted with credentials (a docker config, as on a host)
  await pushLayout(layout.dir, "v1", `${priv.host}/team-secret/payroll:v1`, { creds: { username: user, password } });
  docker = join(work, "docker");
  await mkdir(docker, { recursive: true });
  await writeFile(join(docker, "config.json"), JSON.stringify({ auths: { [priv.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } } }));
  privateRef = `${priv.host}/team-secret/payroll:lazy`;
  const convPriv = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "65536", `${priv.host}/team-secret/payroll:v1`, privateRef], { env: { DOCKER_CONFIG: docker } });
  expect(convPriv.code, convPriv.stderr).toBe(0);

  const keyFile = join(work, "swarm.key");
  await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));
  const port = await freePort();
  const metricsPort = await freePort();
  supernodeUrl = `http://127.0.0.1:${port}`;
  supernodePageUrl = `http://127.0.0.1:${metricsPort}`;
  supernode = await startSupernode(join(work, "supernode"), port, [
    "--registries", `${open.host},${priv.host}`, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--metrics-listen", `127.0.0.1:${metricsPort}`,
  ]);
  await startShoalAgent("agent-a", keyFile);
  await startShoalAgent("agent-b", keyFile);
  browser = await launchChromium();
}, 240_000);

afterAll(async () => {
  // every step runs even when one before it fails: a failed step must not leave agents, mounts and registries behind
  const failures: unknown[] = [];
  const step = async (f: () => Promise<unknown> | undefined) => {
    try {
      await f();
    } catch (err) {
      failures.push(err);
    }
  };
  await step(() => browser?.close());
  for (const a of agents) await a.stop().catch(() => undefined);
  await step(() => supernode?.stop());
  if (work) await step(() => unmountAllUnder(work));
  await step(() => open?.stop());
  await step(() => priv?.stop());
  if (work) await step(() => rm(work, { recursive: true, force: true }));
  if (failures.length > 0) throw new AggregateError(failures, "status page teardown failed");
});

describe("the agent's status page", () => {
  it("shows the chunks held and bytes by source as the API does, and follows a further read", async () => {
    const a = agents[0]!;
    const dir = join(work, "mnt-a");
    await mkdir(dir);
    await callAgent(a.root, "POST", "/v1/mounts", { image: publicRef, mountpoint: dir });
    expect(await readFile(join(dir, "app/run.sh"), "utf8")).toContain("hello from a lazy image");
    const s = await status(a);
    expect(s.page).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]{64}$/);
    // shoal status prints the same address
    const text = await runShoal(["status", "--root", a.root]);
    expect(text.stdout.toString()).toContain(`status page: ${s.page}`);

    const page = await browser!.open(s.page!);
    await page.waitFor("live data", "document.getElementById('state').className === 'live' && document.querySelector('[data-k=image-chunks]') !== null");
    const first = await pageMatchesApi(page, a);
    expect(first.images).toHaveLength(1);
    expect(first.images[0]!.local).toBeGreaterThan(0);
    expect(first.images[0]!.local).toBeLessThan(first.images[0]!.total);
    expect(first.mounts).toEqual([dir]);
    expect(first.sources.supernode).toBeGreaterThan(0);

    // read the rest: the page follows
    expect((await readFile(join(dir, "app/data.bin"))).length).toBe(2 << 20);
    const second = await pageMatchesApi(page, a);
    expect(second.updates).toBeGreaterThan(first.updates);
    expect(second.images[0]!.local).toBeGreaterThan(first.images[0]!.local);
    expect(second.sources.supernode).toBeGreaterThan(first.sources.supernode!);
    // the chart's data is there: an SVG with a line per source that moved
    expect(await page.evaluate<number>("document.querySelectorAll('[data-k=chart] polyline').length")).toBeGreaterThan(0);
    await page.close();
  });

  it("a second agent's chunks from the swarm show as peer bytes on its page, as in its status", async () => {
    const [a, b] = [agents[0]!, agents[1]!];
    const aPeer = (await status(a)).p2p!.peerId;
    // wait until the tracker lists agent A for the image's layers, so B finds it
    await waitFor("the tracker to list agent A", async () => {
      const rows = (await (await fetch(`${supernodePageUrl}/v1/page`)).json()) as { tracker: { layers: Array<{ peers: number }> } };
      return rows.tracker.layers.length > 0 ? true : undefined;
    });
    const dir = join(work, "mnt-b");
    await mkdir(dir);
    await callAgent(b.root, "POST", "/v1/mounts", { image: publicRef, mountpoint: dir });
    // a first small read asks the tracker for the layer's holders (in the background); the big read after uses them
    expect(await readFile(join(dir, "app/run.sh"), "utf8")).toContain("hello");
    await new Promise((r) => setTimeout(r, 1000));
    expect((await readFile(join(dir, "app/data.bin"))).length).toBe(2 << 20);
    const sb = await status(b);
    expect(sb.sources.peer?.bytes ?? 0).toBeGreaterThan(0);
    const page = await browser!.open(sb.page!);
    await page.waitFor("live data", "document.querySelector('[data-k=peer]') !== null");
    const view = await pageMatchesApi(page, b);
    // every chunk byte B took from peers is on its page, under the peers that sent it
    expect(view.peers.reduce((n, p) => n + p.down, 0)).toBe(sb.sources.peer!.bytes);
    expect(view.sources.peer).toBe(sb.sources.peer!.bytes);
    await screenshot(page, "status-agent.png");
    await page.close();
    // and A's page agrees with A's status about what it sent (to B or to no one)
    const pageA = await browser!.open((await status(a)).page!);
    await pageA.waitFor("live data", "document.getElementById('state').className === 'live'");
    const viewA = await pageMatchesApi(pageA, a);
    const toB = viewA.peers.find((p) => p.peerId === sb.p2p!.peerId);
    expect(toB?.up ?? 0).toBe((await status(a)).p2p!.peers.find((p) => p.peerId === sb.p2p!.peerId)?.bytesUp ?? 0);
    expect(aPeer).toBe((await status(a)).p2p!.peerId);
    await pageA.close();
  });

  it("gives its data only with the token: without it the page shows no data and says why", async () => {
    const s = await status(agents[0]!);
    const base = s.page!.split("#")[0]!;
    const token = s.page!.split("#token=")[1]!;
    const none = await fetch(`${base}v1/page`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { code: string }).code).toBe("SHOAL_ERR_PAGE_TOKEN");
    const wrong = await fetch(`${base}v1/page`, { headers: { authorization: `Bearer ${"0".repeat(64)}` } });
    expect(wrong.status).toBe(401);
    const right = await fetch(`${base}v1/page`, { headers: { authorization: `Bearer ${token}` } });
    expect(right.status).toBe(200);
    // the token file is the owner's only
    expect((await stat(join(agents[0]!.root, "web.token"))).mode & 0o777).toBe(0o600);
    const page = await browser!.open(base);
    const state = await page.waitFor<string>("the page to say it cannot update", "document.getElementById('state').className === 'stale' && document.getElementById('state').textContent.includes('SHOAL_ERR_PAGE_TOKEN') && document.getElementById('state').textContent");
    expect(state).toContain("SHOAL_ERR_PAGE_TOKEN");
    expect(await page.evaluate<number>("document.querySelectorAll('[data-k=image]').length")).toBe(0);
    await page.close();
  });
});

describe("the supernode's status page", () => {
  it("shows preheat progress, the tracker's view and origin against served as the API does; private names only to the registry's users", async () => {
    // a public and a private preheat; the private one with the registry's credentials
    const pre = await runShoal(["preheat", "--supernode", supernodeUrl, publicRef]);
    expect(pre.code, pre.stderr).toBe(0);
    const post = await fetch(`${supernodeUrl}/v1/preheat`, { method: "POST", headers: { "content-type": "application/json", authorization: basic }, body: JSON.stringify({ image: privateRef }) });
    expect(post.status).toBe(202);
    const { id } = (await post.json()) as { id: string };
    const job = await waitFor("the private preheat to finish", async () => {
      const st = (await (await fetch(`${supernodeUrl}/v1/preheat/${id}`)).json()) as { state: string; chunksDone: number; chunksTotal: number };
      return st.state === "done" ? st : undefined;
    });

    // shoal preheat sends the host's credentials (its docker config) for a private image
    const cliPrivate = await runShoal(["preheat", "--supernode", supernodeUrl, privateRef], { env: { DOCKER_CONFIG: docker } });
    expect(cliPrivate.code, cliPrivate.stderr).toBe(0);
    // a private preheat without credentials fails with the registry's 401, whose text names the repository
    const refused = await fetch(`${supernodeUrl}/v1/preheat`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image: privateRef }) });
    const refusedId = ((await refused.json()) as { id: string }).id;
    await waitFor("the refused preheat to fail", async () => (((await (await fetch(`${supernodeUrl}/v1/preheat/${refusedId}`)).json()) as { state: string }).state === "failed" ? true : undefined));

    // the JSON: the private image's name only with the registry's credentials (in no error text either)
    const anonymous = JSON.stringify(await (await fetch(`${supernodePageUrl}/v1/page`)).json());
    expect(anonymous).toContain("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
    expect(anonymous).not.toContain("team-secret");
    expect(anonymous).toContain("shop/frontend");
    const authorized = JSON.stringify(await (await fetch(`${supernodePageUrl}/v1/page`, { headers: { authorization: basic } })).json());
    expect(authorized).toContain("team-secret/payroll");
    for (const body of [anonymous, authorized]) {
      expect(body).not.toContain(password);
      expect(body).not.toContain(basic.slice(6));
    }

    const page = await browser!.open(`${supernodePageUrl}/`);
    await page.waitFor("live data", "document.querySelectorAll('[data-k=job-progress]').length >= 2 && document.querySelector('[data-k=layer-agents]') !== null");
    const jobs = await page.evaluate<Array<{ image: string; state: string; done: number; total: number }>>(`[...document.querySelectorAll("tr")].filter((r) => r.querySelector("[data-k=job-image]")).map((r) => ({
      image: r.querySelector("[data-k=job-image]").textContent, state: r.querySelector("[data-k=job-state]").textContent,
      done: Number(r.querySelector("[data-k=job-progress]").dataset.done), total: Number(r.querySelector("[data-k=job-progress]").dataset.total) }))`);
    const shown = jobs.find((j) => j.image.includes("shop/frontend"));
    const hidden = jobs.find((j) => j.image.includes("hidden") && j.state === "done");
    expect(shown?.state).toBe("done");
    expect(hidden).toEqual({ image: "image hidden (no access)", state: "done", done: job.chunksDone, total: job.chunksTotal });
    expect(job.chunksTotal).toBeGreaterThan(0);
    // nothing of the private image's name anywhere in the page the browser holds
    expect(await page.evaluate<string>("document.documentElement.outerHTML")).not.toContain("team-secret");

    // the tracker's view: per layer, as many agents as the tracker lists
    const rows = await page.evaluate<Array<{ layer: string; agents: number }>>(`[...document.querySelectorAll("[data-k=layer]")].map((c) => ({ layer: c.dataset.layer, agents: Number(c.parentElement.querySelector("[data-k=layer-agents]").textContent) }))`);
    expect(rows.length).toBeGreaterThan(0);
    const seed = ((await (await fetch(`${supernodeUrl}/v1/health`)).json()) as { peerId: string }).peerId;
    for (const r of rows) {
      // the tracker's listing, less the supernode itself (which lists its own cache too)
      const listed = (await (await fetch(`${supernodeUrl}/v1/peers?layer=${r.layer}`)).json()) as Array<{ peerId: string }>;
      expect(r.agents).toBe(listed.filter((p) => p.peerId !== seed).length);
    }
    expect(Math.max(...rows.map((r) => r.agents))).toBeGreaterThanOrEqual(2);

    // origin egress and bytes served, as the Prometheus counters say (the supernode idle now)
    const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await (await fetch(`${supernodePageUrl}/metrics`)).text())?.[1] ?? NaN);
    const cards = await page.waitFor<{ origin: number; served: number }>("the counters", `(() => { const o = document.querySelector("[data-k=origin]"), s = document.querySelector("[data-k=served]");
      return o && s ? { origin: Number(o.dataset.v), served: Number(s.dataset.v) } : null; })()`);
    const origin = await metric("shoal_supernode_origin_bytes_total");
    const served = await metric("shoal_supernode_served_bytes_total");
    expect(await page.waitFor("the page to show the counters' values", `(() => { const o = document.querySelector("[data-k=origin]"), s = document.querySelector("[data-k=served]");
      return Number(o.dataset.v) === ${origin} && Number(s.dataset.v) === ${served}; })()`)).toBe(true);
    expect(cards.origin).toBeGreaterThan(0);
    expect(served).toBeGreaterThan(0);
    await screenshot(page, "status-supernode.png");
    await page.close();
  });
});
