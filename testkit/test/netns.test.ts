import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { request } from "node:http";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { createNetns, startNetnsRegistry, type Netns } from "../src/netns.ts";
import { pidAlive } from "../src/host-tools.ts";

const isRoot = process.getuid?.() === 0;
let haveIp = false;
try {
  execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
  haveIp = true;
} catch {
  // no iproute2 or no permission
}

const created: Netns[] = [];
afterAll(async () => {
  await Promise.all(created.map((n) => n.destroy()));
});

async function make(opts: Parameters<typeof createNetns>[0]): Promise<Netns> {
  const ns = await createNetns(opts);
  created.push(ns);
  return ns;
}

const SIZE = 8 * 1024 * 1024;

// A tiny server: GET answers SIZE random bytes, POST answers how many bytes it read.
const serverScript = `
const http = require("node:http");
const body = require("node:crypto").randomBytes(${SIZE});
const srv = http.createServer((req, res) => {
  if (req.method === "POST") {
    let n = 0;
    req.on("data", (c) => { n += c.length; });
    req.on("end", () => res.end(String(n)));
    return;
  }
  res.writeHead(200, { "content-length": body.length });
  res.end(body);
});
srv.listen(Number(process.argv[2]), process.argv[1], () => console.log("listening"));
`;

async function startServer(ns: Netns, port: number): Promise<number> {
  const child = ns.spawn(process.execPath, ["-e", serverScript, ns.nsAddr, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
    createInterface({ input: child.stdout! }).once("line", () => resolve());
  });
  return child.pid!;
}

/** Seconds to GET the body (from request to last byte) and its length. */
function download(url: string): Promise<{ sec: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
      });
      res.on("end", () => resolve({ sec: (performance.now() - t0) / 1000, bytes }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Seconds to POST `data` (until the server has read it all and answered). */
function upload(url: string, data: Buffer): Promise<{ sec: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { method: "POST", headers: { "content-length": data.length } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        text += c;
      });
      res.on("end", () => resolve({ sec: (performance.now() - t0) / 1000, bytes: Number(text) }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const ipText = (args: string[]) => execFileSync("ip", args, { encoding: "utf8" });

describe.skipIf(!isRoot || !haveIp)("createNetns", () => {
  it("caps both directions at the given rate and leaves nothing behind after destroy", async () => {
    const rate = 50;
    const ns = await make({ rateMbit: rate });
    expect(ns.nsAddr).toMatch(/^10\.213\.\d+\.\d+$/);
    expect(ipText(["netns", "list"])).toContain(ns.name);
    expect(ipText(["-br", "link", "show", ns.hostIf])).toContain(ns.hostIf);
    expect((await ns.exec("ip", ["-br", "addr", "show", ns.nsIf])).stdout).toContain(`${ns.nsAddr}/30`);
    expect((await ns.exec("tc", ["qdisc", "show", "dev", ns.nsIf])).stdout).toContain("tbf");
    expect(ipText(["-o", "route", "show", "table", "main"])).not.toMatch(new RegExp(`default .*${ns.hostIf}`));

    const pid = await startServer(ns, 8080);
    const url = `http://${ns.nsAddr}:8080/`;
    const expected = (SIZE * 8) / (rate * 1e6);

    const down = await download(url);
    expect(down.bytes).toBe(SIZE);
    const downMbit = (down.bytes * 8) / down.sec / 1e6;
    console.log(`netns cap ${rate} Mbit/s: download ${downMbit.toFixed(1)} Mbit/s (${down.sec.toFixed(2)} s, ideal ${expected.toFixed(2)} s)`);
    expect(downMbit).toBeGreaterThan(rate * 0.7);
    expect(downMbit).toBeLessThan(rate * 1.3);

    const up = await upload(url, randomBytes(SIZE));
    expect(up.bytes).toBe(SIZE);
    const upMbit = (SIZE * 8) / up.sec / 1e6;
    console.log(`netns cap ${rate} Mbit/s: upload ${upMbit.toFixed(1)} Mbit/s (${up.sec.toFixed(2)} s)`);
    expect(upMbit).toBeGreaterThan(rate * 0.7);
    expect(upMbit).toBeLessThan(rate * 1.3);

    await ns.destroy();
    expect(ns.destroyed).toBe(true);
    expect(pidAlive(pid)).toBe(false);
    expect(ipText(["netns", "list"])).not.toContain(ns.name);
    const links = ipText(["-br", "link"]);
    expect(links).not.toContain(ns.hostIf);
    expect(links).not.toContain(ns.nsIf);
    expect(ipText(["-o", "-4", "addr"])).not.toContain(`${ns.hostAddr}/`);
    await ns.destroy(); // idempotent
  });

  it("gives parallel namespaces distinct /30s", async () => {
    const [a, b, c] = await Promise.all([make({}), make({}), make({})]);
    const subnets = new Set([a!, b!, c!].map((n) => n.nsAddr.split(".").map(Number).reduce((x, y) => x * 256 + y, 0) >>> 2));
    expect(subnets.size).toBe(3);
    for (const n of [a!, b!, c!]) {
      expect(n.hostAddr).not.toBe(n.nsAddr);
      // Reachable from the host, uncapped.
      await n.exec("true", []);
    }
    await Promise.all([a!.destroy(), b!.destroy(), c!.destroy()]);
    const list = ipText(["netns", "list"]);
    for (const n of [a!, b!, c!]) expect(list).not.toContain(n.name);
  });

  it("runs a registry inside the namespace and counts the blob bytes it serves", async () => {
    const ns = await make({ rateMbit: 200 });
    const reg = await startNetnsRegistry(ns);
    try {
      expect(reg.host).toBe(`${ns.nsAddr}:5000`);
      expect((await fetch(`${reg.url}/v2/`)).status).toBe(200);
      const data = randomBytes(100_000);
      const digest = `sha256:${(await import("node:crypto")).createHash("sha256").update(data).digest("hex")}`;
      const post = await fetch(`${reg.url}/v2/x/y/blobs/uploads/`, { method: "POST" });
      expect(post.status).toBe(202);
      const loc = new URL(post.headers.get("location")!, reg.url);
      loc.searchParams.set("digest", digest);
      expect((await fetch(loc, { method: "PUT", body: data, headers: { "content-type": "application/octet-stream" } })).status).toBe(201);
      reg.resetStats();
      const got = Buffer.from(await (await fetch(`${reg.url}/v2/x/y/blobs/${digest}`)).arrayBuffer());
      expect(got.equals(data)).toBe(true);
      await reg.settle();
      expect(reg.stats().blobBytes).toBe(data.length);
      expect(reg.stats().blobRequests).toBe(1);
    } finally {
      const pid = reg.pid!;
      await reg.stop();
      expect(pidAlive(pid)).toBe(false);
      await ns.destroy();
    }
  });
});
