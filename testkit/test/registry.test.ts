import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { startRegistry, type RunningRegistry } from "../src/registry.ts";
import { pidAlive } from "../src/host-tools.ts";

const started: RunningRegistry[] = [];
afterAll(async () => {
  await Promise.all(started.map((r) => r.stop()));
});

async function start(opts?: Parameters<typeof startRegistry>[0]): Promise<RunningRegistry> {
  const r = await startRegistry(opts);
  started.push(r);
  return r;
}

/** Uploads `data` as a blob with plain fetch (monolithic: POST, then PUT ?digest=). */
async function upload(url: string, repo: string, data: Buffer, headers: Record<string, string> = {}): Promise<string> {
  const digest = `sha256:${createHash("sha256").update(data).digest("hex")}`;
  const post = await fetch(`${url}/v2/${repo}/blobs/uploads/`, { method: "POST", headers });
  expect(post.status).toBe(202);
  const loc = new URL(post.headers.get("location")!, url);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, { method: "PUT", body: data, headers: { ...headers, "content-type": "application/octet-stream" } });
  expect(put.status).toBe(201);
  return digest;
}

describe("startRegistry", () => {
  it("serves the v2 API on 127.0.0.1 and counts blob bytes from the registry's log", async () => {
    const reg = await start();
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(reg.url).toBe(`http://${reg.host}`);
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);

    const data = randomBytes(10_000);
    const digest = await upload(reg.url, "a/b", data);
    await reg.resetStats();
    const whole = await fetch(`${reg.url}/v2/a/b/blobs/${digest}`);
    expect(Buffer.from(await whole.arrayBuffer())).toEqual(data);
    const part = await fetch(`${reg.url}/v2/a/b/blobs/${digest}`, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect((await part.arrayBuffer()).byteLength).toBe(100);
    expect((await fetch(`${reg.url}/v2/a/b/blobs/${digest}`, { method: "HEAD" })).status).toBe(200);
    await reg.settle();
    const st = reg.stats();
    expect(st.blobRequests).toBe(2);
    expect(st.blobBytes).toBe(10_100);
    expect(st.requests.map((r) => `${r.method} ${r.status}`)).toEqual(["GET 200", "GET 206", "HEAD 200"]);
    expect(st.requests[0]!.path).toBe(`/v2/a/b/blobs/${digest}`);

    await reg.resetStats();
    await reg.settle();
    expect(reg.stats()).toEqual({ blobBytes: 0, blobRequests: 0, requests: [] });
  });

  it("halts (connection refused), restarts with the same port and storage, and stop() cleans up", async () => {
    const reg = await start();
    const data = randomBytes(1000);
    const digest = await upload(reg.url, "keep", data);
    const pid = reg.pid!;
    await reg.halt();
    expect(reg.stopped).toBe(true);
    expect(pidAlive(pid)).toBe(false);
    await expect(fetch(`${reg.url}/v2/`)).rejects.toThrow();
    await reg.restart();
    expect(reg.stopped).toBe(false);
    expect(reg.pid).not.toBe(pid);
    const res = await fetch(`${reg.url}/v2/keep/blobs/${digest}`);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(data);

    const newPid = reg.pid!;
    const dir = reg.dataDir;
    expect(existsSync(dir)).toBe(true);
    await reg.stop();
    expect(pidAlive(newPid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await reg.stop(); // idempotent
  });

  it("freeze() makes requests hang until thaw()", async () => {
    const reg = await start();
    reg.freeze();
    try {
      const res = await Promise.race([fetch(`${reg.url}/v2/`).then(() => "answered"), new Promise((r) => setTimeout(() => r("hung"), 300))]);
      expect(res).toBe("hung");
    } finally {
      reg.thaw();
    }
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
  });

  it("enforces htpasswd and logs refused requests as 401", async () => {
    const reg = await start({ htpasswd: { user: "alice", password: "pw:with:colons" } });
    const good = { authorization: `Basic ${Buffer.from("alice:pw:with:colons").toString("base64")}` };
    const bad = { authorization: `Basic ${Buffer.from("alice:nope").toString("base64")}` };
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(401);
    expect((await fetch(`${reg.url}/v2/`, { headers: bad })).status).toBe(401);
    expect((await fetch(`${reg.url}/v2/`, { headers: good })).status).toBe(200);
    await upload(reg.url, "private", randomBytes(10), good);
    await reg.settle();
    expect(reg.stats().requests.slice(0, 3).map((r) => r.status)).toEqual([401, 401, 200]);
  });

  it("issues bearer tokens the registry accepts when started with tokenAuth", async () => {
    const reg = await start({ tokenAuth: { user: "bob", password: "secret" } });
    const challenge = await fetch(`${reg.url}/v2/x/tags/list`);
    expect(challenge.status).toBe(401);
    const m = /realm="([^"]+)",service="([^"]+)"/.exec(challenge.headers.get("www-authenticate") ?? "");
    expect(m?.[1]).toBe(reg.tokenServer!.url);
    const tokenUrl = `${m![1]}?service=${m![2]}&scope=repository:x:pull,push`;
    expect((await fetch(tokenUrl, { headers: { authorization: `Basic ${Buffer.from("bob:wrong").toString("base64")}` } })).status).toBe(401);
    const { token } = (await (await fetch(tokenUrl, { headers: { authorization: `Basic ${Buffer.from("bob:secret").toString("base64")}` } })).json()) as { token: string };
    const auth = { authorization: `Bearer ${token}` };
    await upload(reg.url, "x", randomBytes(10), auth);
    expect(reg.tokenServer!.tokenRequests).toBe(2);
    // an anonymous token grants nothing
    const anon = (await (await fetch(tokenUrl)).json()) as { token: string };
    expect((await fetch(`${reg.url}/v2/x/blobs/uploads/`, { method: "POST", headers: { authorization: `Bearer ${anon.token}` } })).status).toBe(401);
  });

  it("fails fast with the registry's output when the binary cannot start", async () => {
    await expect(startRegistry({ binary: "/bin/false" })).rejects.toThrow(/exited/);
    await expect(startRegistry({ binary: "/nonexistent/registry" })).rejects.toThrow(/ENOENT/);
  });
});
