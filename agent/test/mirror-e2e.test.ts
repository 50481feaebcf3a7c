// The agent's registry mirror with real engines: skopeo through a
// registries.conf mirror (podman's form: the registry in the path),
// containerd's `ctr image pull --hosts-dir` (its `?ns=` form) and `ctr run`,
// a supernode serving the blobs, a rogue supernode whose bytes are wrong,
// and the agent stopped (containerd falls back to the origin).
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { digestOf } from "@shoal/base";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  busyboxImage, freePort, pushLayout, run, runShoalOk, startAgent, startContainerd, startRegistry, startSupernode, unmountAllUnder, writeImageLayout,
  type RunningAgent, type RunningContainerd, type RunningRegistry, type ShoalDaemon,
} from "@shoal/testkit";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
let work: string;
let registry: RunningRegistry;
let supernode: ShoalDaemon;
let agent: RunningAgent;
let containerd: RunningContainerd;
let mirrorPort: number;
let metricsPort: number;
const cleanups: Array<() => Promise<unknown>> = [];

interface Manifest { config: { digest: string }; layers: Array<{ digest: string; size: number }> }
async function manifestOf(ref: string): Promise<{ digest: string; manifest: Manifest }> {
  const [repo, tag] = ref.split(":") as [string, string];
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  return { digest: res.headers.get("docker-content-digest")!, manifest: (await res.json()) as Manifest };
}

async function metric(name: string, labels: string, port = metricsPort): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** The sha256 digest of a response's whole body. */
async function blobDigest(res: Response): Promise<string> {
  return digestOf(Buffer.from(await res.arrayBuffer()));
}

/** skopeo copy through the mirror as podman would use it: a registries.conf mirror with the registry as a path prefix. */
async function skopeoThroughMirror(ref: string, dest: string, port = mirrorPort): Promise<Manifest> {
  const conf = join(work, `registries-${port}.conf`);
  await runShoalOk(["mirror-config", "podman", "--mirror", `http://127.0.0.1:${port}`, "--registry", registry.host, "--plain-http", "--config", conf, "--write"]);
  await run("skopeo", ["copy", "--registries-conf", conf, "--src-tls-verify=false", `docker://${registry.host}/${ref}`, `oci:${dest}:x`]);
  const index = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
  return JSON.parse(await readFile(join(dest, "blobs", "sha256", index.manifests[0]!.digest.slice(7)), "utf8")) as Manifest;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-mirror-"));
  registry = await startRegistry();
  const layout = await writeImageLayout(join(work, "layout"), busyboxImage({ dataBytes: 6 << 20, marker: "mirrored" }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/app:v1`);
  await runShoalOk(["convert", "--plain-http", `${registry.host}/app:v1`, `${registry.host}/app:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
  const snPort = await freePort();
  supernode = await startSupernode(join(work, "supernode"), snPort, ["--registries", registry.host, "--log-level", "warn"]);
  cleanups.push(() => supernode.stop());
  mirrorPort = await freePort();
  metricsPort = await freePort();
  agent = await startAgent(join(work, "agent"), [
    "--plain-http", "--supernode", `http://127.0.0.1:${snPort}`, "--mirror-listen", `127.0.0.1:${mirrorPort}`, "--metrics-listen", `127.0.0.1:${metricsPort}`, "--mirror-registries", "*",
  ]);
  cleanups.push(() => agent.stop());
  containerd = await startContainerd(join(work, "containerd"));
  cleanups.push(() => containerd.stop());
}, 180_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  if (work) await unmountAllUnder(work);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the registry mirror", () => {
  it("serves skopeo (a registries.conf mirror) converted and unconverted images, the second time from the supernode's cache or the agent's store", async () => {
    // a converted image's layers are assembled from verified chunks ("swarm"); an unconverted one's come from the supernode's
    // block cache, whole ("supernode") or, above 1 MiB, block by verified block ("swarm"): either way, not from the origin
    const served = async () => (await metric("shoal_mirror_blob_bytes_total", `source="swarm"`)) + (await metric("shoal_mirror_blob_bytes_total", `source="supernode"`));
    for (const tag of ["v1", "lazy"]) {
      const origin = await manifestOf(`app:${tag}`);
      const before = await served();
      await registry.settle();
      await registry.resetStats();
      const copied = await skopeoThroughMirror(`app:${tag}`, join(work, `skopeo-${tag}-1`));
      expect(copied.layers.map((l) => l.digest)).toEqual(origin.manifest.layers.map((l) => l.digest));
      expect(copied.config.digest).toBe(origin.manifest.config.digest);
      const layerBytes = origin.manifest.layers.reduce((n, l) => n + l.size, 0);
      expect((await served()) - before).toBeGreaterThanOrEqual(layerBytes);
      await registry.settle();
      const firstBytes = registry.stats().blobBytes;
      await skopeoThroughMirror(`app:${tag}`, join(work, `skopeo-${tag}-2`));
      await registry.settle();
      // the second copy cost the origin no blob bytes (the HEADs of the access checks carry none)
      expect(registry.stats().blobBytes).toBe(firstBytes);
    }
  });

  it("an image pulled through one host's mirror reaches the next host's engine from the first host, not the origin, converted or not", async () => {
    const keyFile = join(work, "swarm.key");
    const { formatSwarmKey, generateSwarmKey } = await import("@shoal/p2p");
    await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));
    const layout = await writeImageLayout(join(work, "layout-shared"), busyboxImage({ dataBytes: 8 << 20, marker: "shared" }), { tag: "v1" });
    await pushLayout(layout.dir, "v1", `${registry.host}/shared:v1`);
    await runShoalOk(["convert", "--plain-http", `${registry.host}/shared:v1`, `${registry.host}/shared:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
    const snPort = await freePort();
    const sn = await startSupernode(join(work, "supernode-swarm"), snPort, ["--registries", registry.host, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"]);
    const hosts: RunningAgent[] = [];
    try {
      const ports = [await freePort(), await freePort()];
      for (const [i, port] of ports.entries()) {
        hosts.push(await startAgent(join(work, `swarm-host-${i}`), [
          "--plain-http", "--supernode", `http://127.0.0.1:${snPort}`, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--mirror-listen", `127.0.0.1:${port}`, "--mirror-registries", registry.host,
        ]));
      }
      const { callAgent } = await import("@shoal/agent/client");
      // converted: chunks of the index; unconverted: the supernode's verified blocks
      for (const tag of ["lazy", "v1"]) {
        const { manifest } = await manifestOf(`shared:${tag}`);
        const layerBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
        const peerBytes = async (i: number) => (await callAgent<{ sources: Record<string, { bytes: number } | undefined> }>(hosts[i]!.root, "GET", "/v1/status")).sources;
        await skopeoThroughMirror(`shared:${tag}`, join(work, `skopeo-shared-${tag}-0`), ports[0]);
        await new Promise((r) => setTimeout(r, 2500)); // the first host announces what it holds
        const before = await peerBytes(1);
        await registry.settle();
        await registry.resetStats();
        const copied = await skopeoThroughMirror(`shared:${tag}`, join(work, `skopeo-shared-${tag}-1`), ports[1]);
        expect(copied.layers.map((l) => l.digest)).toEqual(manifest.layers.map((l) => l.digest));
        const after = await peerBytes(1);
        // the second host's pieces came from peers (the first host, or the supernode seeding over libp2p), none from the origin
        expect((after.peer?.bytes ?? 0) - (before.peer?.bytes ?? 0), tag).toBeGreaterThan(layerBytes / 2);
        expect(after.origin, tag).toBeUndefined();
        await registry.settle();
        expect(registry.stats().blobBytes, tag).toBeLessThan(layerBytes / 10); // configs and tails at most
      }
    } finally {
      for (const h of hosts) await h.stop();
      await sn.stop();
    }
  });

  it("a peer that serves corrupt chunks: every blob the engine receives still matches its digest", async () => {
    const { ChunkPeer, formatSwarmKey, generateSwarmKey, readSwarmKey } = await import("@shoal/p2p");
    const { generateKeyPair } = await import("@libp2p/crypto/keys");
    const { sealForTest } = await import("@shoal/swarm/testsuite");
    const keyFile = join(work, "swarm-rogue.key");
    await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));
    const key = await readSwarmKey(keyFile);
    const snPort = await freePort();
    const sn = await startSupernode(join(work, "supernode-rogue"), snPort, ["--registries", registry.host, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"]);
    const rogueKey = await generateKeyPair("Ed25519");
    const rogue = new ChunkPeer({ provider: { readCompressed: async () => randomBytes(4096) } }, { swarmKey: key, listen: ["/ip4/127.0.0.1/tcp/0"], privateKey: rogueKey });
    await rogue.start();
    const port = await freePort();
    let victim: RunningAgent | undefined;
    try {
      const { manifest } = await manifestOf("app:lazy");
      const signer = { peerId: rogue.peerId, sign: (d: Uint8Array) => rogueKey.sign(d) };
      const sealed = await sealForTest("announce", { peerId: rogue.peerId, addrs: rogue.addrs, layers: manifest.layers.map((l) => l.digest) }, signer, key.psk);
      expect((await fetch(`http://127.0.0.1:${snPort}/v1/announce`, { method: "POST", body: JSON.stringify(sealed) })).status).toBe(200);
      victim = await startAgent(join(work, "victim-peer"), [
        "--plain-http", "--supernode", `http://127.0.0.1:${snPort}`, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--mirror-listen", `127.0.0.1:${port}`, "--mirror-registries", registry.host,
      ]);
      const copied = await skopeoThroughMirror("app:lazy", join(work, "skopeo-victim-peer"), port);
      expect(copied.layers.map((l) => l.digest)).toEqual(manifest.layers.map((l) => l.digest)); // skopeo checked every digest
      const { callAgent } = await import("@shoal/agent/client");
      const s = await callAgent<{ p2p?: { dropped: string[] } }>(victim.root, "GET", "/v1/status");
      expect(rogue.stats().uploadsServed).toBeGreaterThan(0);
      expect(s.p2p?.dropped).toContain(rogue.peerId);
    } finally {
      await victim?.stop();
      await rogue.stop();
      await sn.stop();
    }
  });

  it("answers misses fast with OCI errors, and refuses what is not the read API", async () => {
    const base = `http://127.0.0.1:${mirrorPort}`;
    const t = performance.now();
    const missing = await fetch(`${base}/v2/${registry.host}/app/manifests/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe("MANIFEST_UNKNOWN");
    const blob = await fetch(`${base}/v2/app/blobs/sha256:${"0".repeat(64)}?ns=${registry.host}`);
    expect(blob.status).toBe(404);
    expect(((await blob.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe("BLOB_UNKNOWN");
    expect(performance.now() - t).toBeLessThan(5000); // a bound on a hang, not a timing assertion
    for (const [method, path] of [["PUT", `/v2/app/manifests/v1?ns=${registry.host}`], ["GET", "/v2/app/tags/list"], ["GET", "/etc/passwd"]] as const) {
      const r = await fetch(`${base}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(((await r.json()) as { errors: unknown[] }).errors.length).toBe(1);
    }
    const ping = await fetch(`${base}/v2/`);
    expect(ping.status).toBe(200);
    expect(ping.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
  });

  it("reads an origin's answer only up to its bound while it streams: a 600 MiB manifest or 404 body is cut off, not buffered", async () => {
    // an origin (any host an ns= names) answering with endless chunked bodies; it counts what it managed to send
    let sent = 0;
    const huge: Server = createServer((req, res) => {
      if (req.url === "/v2/" || req.method === "HEAD") return void res.writeHead(200).end();
      res.writeHead(req.url!.includes("missing") ? 404 : 200, { "content-type": OCI_MANIFEST });
      const piece = Buffer.alloc(1 << 20, 0x61);
      let left = 600;
      const pump = (): void => {
        while (left > 0) {
          left--;
          sent += piece.length;
          if (!res.write(piece)) return void res.once("drain", pump);
        }
        res.end();
      };
      res.on("close", () => (left = 0));
      pump();
    });
    await new Promise<void>((r) => huge.listen(0, "127.0.0.1", r));
    const port = (huge.address() as { port: number }).port;
    try {
      for (const [path, want] of [["app/manifests/v1", 502], ["app/manifests/missing", 404]] as const) {
        sent = 0;
        const res = await fetch(`http://127.0.0.1:${mirrorPort}/v2/${path}?ns=127.0.0.1:${port}`, { headers: { accept: OCI_MANIFEST } });
        expect(res.status).toBe(want);
        const body = await res.text();
        expect(body.length).toBeLessThan(1 << 20);
        // what the origin got out before the mirror stopped reading: the bound plus socket buffers, not 600 MiB
        await new Promise((r) => setTimeout(r, 200));
        expect(sent).toBeLessThan(64 << 20);
      }
    } finally {
      huge.closeAllConnections();
      await new Promise((r) => huge.close(r));
    }
  });

  it("reaches only the registries of --mirror-registries (403 before any connection), and says so loudly when bound beyond loopback", async () => {
    // a host that counts the connections it gets
    let connections = 0;
    const other: Server = createServer((_req, res) => void res.writeHead(200).end());
    other.on("connection", () => connections++);
    await new Promise<void>((r) => other.listen(0, "127.0.0.1", r));
    const otherHost = `127.0.0.1:${(other.address() as { port: number }).port}`;
    const port = await freePort();
    const wide = await startAgent(join(work, "agent-wide"), ["--plain-http", "--mirror-listen", `0.0.0.0:${port}`, "--mirror-registries", registry.host]);
    try {
      expect(wide.logs()).toMatch(/LISTENS BEYOND LOOPBACK/);
      const refused = await fetch(`http://127.0.0.1:${port}/v2/app/manifests/v1?ns=${otherHost}`);
      expect(refused.status).toBe(403);
      expect(((await refused.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe("DENIED");
      const pathForm = await fetch(`http://127.0.0.1:${port}/v2/${otherHost.replace(":", "__")}/app/blobs/sha256:${"a".repeat(64)}`);
      expect(pathForm.status).toBe(403);
      expect(connections).toBe(0);
      // the listed registry is served
      expect((await fetch(`http://127.0.0.1:${port}/v2/app/manifests/v1?ns=${registry.host}`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
    } finally {
      await wide.stop();
      await new Promise((r) => other.close(r));
    }
  });

  it("serves containerd (ctr image pull --hosts-dir, ?ns=), and ctr run works from what it pulled", async () => {
    const hostsDir = join(work, "certs.d");
    // the mirror's address from the running agent, as a user would
    await runShoalOk(["mirror-config", "containerd", "--root", agent.root, "--registry", registry.host, "--plain-http", "--config", hostsDir, "--write"]);
    expect(await readFile(join(hostsDir, registry.host, "hosts.toml"), "utf8")).toContain(`[host."http://127.0.0.1:${mirrorPort}"]`);
    const before = await metric("shoal_mirror_requests_total", 'kind="manifest",status="200"');
    const ctr = (...args: string[]) => run("ctr", ["--address", containerd.address, "-n", "mirror", ...args]);
    await ctr("image", "pull", "--hosts-dir", hostsDir, `${registry.host}/app:v1`);
    expect(await metric("shoal_mirror_requests_total", 'kind="manifest",status="200"')).toBeGreaterThan(before);
    const { stdout } = await ctr("image", "ls", "-q");
    expect(stdout).toContain(`${registry.host}/app:v1`);
    const list = (await ctr("image", "ls")).stdout;
    expect(list).toContain((await manifestOf("app:v1")).digest);
    const out = await ctr("run", "--rm", `${registry.host}/app:v1`, "mirror-run", "/bin/cat", "/etc/marker");
    expect(out.stdout).toContain("mirrored");
  });

  it("serves podman pull (a registries.conf mirror from shoal mirror-config), converted and unconverted", async () => {
    const conf = join(work, "podman-registries.conf");
    await runShoalOk(["mirror-config", "podman", "--root", agent.root, "--registry", registry.host, "--plain-http", "--config", conf, "--write"]);
    const storage = join(work, "podman");
    const podman = (...args: string[]) => run("podman", ["--root", join(storage, "root"), "--runroot", join(storage, "run"), "--storage-driver", "vfs", ...args], { env: { ...process.env as Record<string, string>, CONTAINERS_REGISTRIES_CONF: conf } });
    for (const tag of ["v1", "lazy"]) {
      const before = await metric("shoal_mirror_requests_total", 'kind="manifest",status="200"');
      await podman("pull", "--quiet", `${registry.host}/app:${tag}`);
      expect(await metric("shoal_mirror_requests_total", 'kind="manifest",status="200"'), tag).toBeGreaterThan(before);
      // both tags are one image to podman (the conversion keeps the config): its repo digests name each pull
      const digests = (await podman("image", "inspect", "--format", "{{.RepoDigests}}", `${registry.host}/app:${tag}`)).stdout;
      expect(digests, tag).toContain((await manifestOf(`app:${tag}`)).digest);
    }
  });

  it("cuts off a blob the swarm serves wrong, so no engine gets a complete bad response; the next pull is from the origin", async () => {
    const { manifest } = await manifestOf("app:v1");
    const layer = manifest.layers[0]!;
    const rogueSize = layer.size;
    // a supernode that answers every blob with the right length of wrong bytes
    const rogue: Server = createServer((req, res) => {
      const m = /^bytes=(\d+)-/.exec(req.headers.range ?? "");
      const size = Number(req.url?.includes("blobs") ? rogueSize : 0) - Number(m?.[1] ?? 0);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
      res.end(randomBytes(size));
    });
    const roguePort = await freePort();
    await new Promise<void>((r) => rogue.listen(roguePort, "127.0.0.1", r));
    const port = await freePort();
    const victim = await startAgent(join(work, "victim"), ["--plain-http", "--supernode", `http://127.0.0.1:${roguePort}`, "--mirror-listen", `127.0.0.1:${port}`, "--mirror-registries", registry.host, "--origin-fallback", "true"]);
    try {
      const url = `http://127.0.0.1:${port}/v2/${registry.host}/app/blobs/${layer.digest}`;
      const first = await fetch(url);
      expect(first.status).toBe(200);
      await expect(first.arrayBuffer()).rejects.toThrow(); // cut off before its end
      const second = Buffer.from(await (await fetch(url)).arrayBuffer());
      expect(second.length).toBe(layer.size);
      const { createHash } = await import("node:crypto");
      expect(`sha256:${createHash("sha256").update(second).digest("hex")}`).toBe(layer.digest);
      // an engine's pull through this mirror gets only good blobs: a pull may fail (a layer cut off,
      // which its digest check rejects), and is retried as engines are, until it completes, right
      let copied: Manifest | undefined;
      const failures: string[] = [];
      for (let attempt = 0; attempt < 4 && !copied; attempt++) {
        copied = await skopeoThroughMirror("app:v1", join(work, `skopeo-victim-${attempt}`), port).catch((err: Error) => void failures.push(err.message));
      }
      expect(copied, failures.join("\n")).toBeDefined();
      expect(copied!.layers.map((l) => l.digest)).toEqual(manifest.layers.map((l) => l.digest));
      for (const f of failures) expect(f).toMatch(/unexpected EOF|digest|connection reset/i);
    } finally {
      await victim.stop();
      await new Promise((r) => rogue.close(r));
    }
  });

  it("with the agent stopped, containerd falls back to the origin and the pull succeeds", async () => {
    await agent.stop();
    const hostsDir = join(work, "certs.d");
    const ctr = (...args: string[]) => run("ctr", ["--address", containerd.address, "-n", "fallback", ...args]);
    await ctr("image", "pull", "--hosts-dir", hostsDir, `${registry.host}/app:lazy`);
    expect((await ctr("image", "ls", "-q")).stdout).toContain(`${registry.host}/app:lazy`);
  });
});

describe("the registry mirror in front of a registry with htpasswd auth", () => {
  const user = "mirror-user";
  const password = "mirror-secret-pw";
  let priv: RunningRegistry;
  let privAgent: RunningAgent;
  let privSupernode: ShoalDaemon;
  let privMirror: string;
  let hostsDir: string;
  let privMetrics: number;

  beforeAll(async () => {
    priv = await startRegistry({ htpasswd: { user, password } });
    const layout = await writeImageLayout(join(work, "layout-private"), busyboxImage({ dataBytes: 2 << 20, marker: "private" }), { tag: "v1" });
    await run("skopeo", ["copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", `${user}:${password}`, `oci:${layout.dir}:v1`, `docker://${priv.host}/team/app:v1`]);
    const snPort = await freePort();
    // the registry's yes is trusted 1 s, so that a frozen registry meets checks that must ask it again
    privSupernode = await startSupernode(join(work, "supernode-private"), snPort, ["--registries", priv.host, "--access-ttl", "1s", "--log-level", "warn"]);
    const port = await freePort();
    privMirror = `http://127.0.0.1:${port}`;
    privMetrics = await freePort();
    privAgent = await startAgent(join(work, "agent-private"), [
      "--plain-http", "--supernode", `http://127.0.0.1:${snPort}`, "--mirror-listen", `127.0.0.1:${port}`, "--mirror-registries", `${priv.host},${registry.host}`, "--metrics-listen", `127.0.0.1:${privMetrics}`,
    ]);
    hostsDir = join(work, "certs.d-private");
    await runShoalOk(["mirror-config", "containerd", "--root", privAgent.root, "--registry", priv.host, "--plain-http", "--config", hostsDir, "--write"]);
  }, 120_000);

  const basic = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  async function privManifest(repo: string, ref: string): Promise<{ digest: string; manifest: Manifest }> {
    const res = await fetch(`${priv.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: OCI_MANIFEST, authorization: basic } });
    return { digest: res.headers.get("docker-content-digest")!, manifest: (await res.json()) as Manifest };
  }

  afterAll(async () => {
    await privAgent?.stop().catch(() => undefined);
    await privSupernode?.stop().catch(() => undefined);
    await priv?.stop();
  });

  it("without credentials the engine gets 401 with the registry's challenge and no byte; with them the pull works; the cache serves no one else", async () => {
    const ctr = (...args: string[]) => run("ctr", ["--address", containerd.address, "-n", "private", ...args]);
    await expect(ctr("image", "pull", "--hosts-dir", hostsDir, `${priv.host}/team/app:v1`)).rejects.toThrow(/401|unauthorized|authoriz/i);
    await ctr("image", "pull", "--hosts-dir", hostsDir, "--user", `${user}:${password}`, `${priv.host}/team/app:v1`);
    expect((await ctr("image", "ls", "-q")).stdout).toContain(`${priv.host}/team/app:v1`);
    // through the mirror, from the supernode (the engine's Basic credentials passed its access check)
    const text = await (await fetch(`http://127.0.0.1:${privMetrics}/metrics`)).text();
    expect(text).toMatch(/shoal_mirror_blob_bytes_total\{source="supernode"\} [1-9]/);
    // the blobs are now in the supernode's cache; a caller without (or with wrong) credentials still gets nothing
    const res = await fetch(`${priv.url}/v2/team/app/manifests/v1`, { headers: { accept: OCI_MANIFEST, authorization: `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` } });
    const manifest = (await res.json()) as Manifest;
    for (const d of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
      for (const authorization of [undefined, `Basic ${Buffer.from(`${user}:wrong`).toString("base64")}`]) {
        const r = await fetch(`${privMirror}/v2/team/app/blobs/${d}?ns=${priv.host}`, authorization ? { headers: { authorization } } : {});
        expect(r.status).toBe(401);
        expect(r.headers.get("www-authenticate")).toMatch(/^Basic /);
        const body = Buffer.from(await r.arrayBuffer());
        expect(body.length).toBeLessThan(1024);
        expect(JSON.parse(body.toString()).errors[0].code).toBe("UNAUTHORIZED");
      }
    }
    const m = await fetch(`${privMirror}/v2/team/app/manifests/v1?ns=${priv.host}`);
    expect(m.status).toBe(401);
    // and the agent's log never holds the password
    expect(privAgent.logs()).not.toContain(password);
  });

  it("with the registry frozen, a caller it allowed gets its blobs and one it never allowed a 503, each within 10 s", async () => {
    const { manifest } = await privManifest("team/app", "v1");
    const blobs = [manifest.config.digest, ...manifest.layers.map((l) => l.digest)];
    for (const d of blobs) expect(await blobDigest(await fetch(`${privMirror}/v2/team/app/blobs/${d}?ns=${priv.host}`, { headers: { authorization: basic } }))).toBe(d);
    await new Promise((r) => setTimeout(r, 1500)); // past the supernode's --access-ttl
    priv.freeze();
    try {
      // each request bounded at 15 s: a hang fails here rather than at the test's timeout
      const answers = await Promise.all(blobs.flatMap((d) => [
        fetch(`${privMirror}/v2/team/app/blobs/${d}?ns=${priv.host}`, { headers: { authorization: basic }, signal: AbortSignal.timeout(15_000) }).then(async (r) => ({ who: "allowed", d, status: r.status, got: await blobDigest(r) })),
        fetch(`${privMirror}/v2/team/app/blobs/${d}?ns=${priv.host}`, { signal: AbortSignal.timeout(15_000) }).then(async (r) => ({ who: "stranger", d, status: r.status, body: await r.text() })),
      ]));
      for (const a of answers) {
        if (a.who === "allowed") expect(a, a.d).toMatchObject({ status: 200, got: a.d });
        else {
          expect(a.status, a.d).toBe(503);
          expect(JSON.parse((a as { body: string }).body).errors[0].detail.shoal).toBe("SHOAL_ERR_TIMEOUT");
        }
      }
    } finally {
      priv.thaw();
    }
  });

  it("a layer two registries share comes from the registry each request names: the public one's pull goes on while the private one is frozen", async () => {
    // the public image's lazy form, copied byte for byte into the private registry
    await run("skopeo", ["copy", "--quiet", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false", "--dest-creds", `${user}:${password}`, `docker://${registry.host}/app:lazy`, `docker://${priv.host}/team/shared:lazy`]);
    const pub = await manifestOf("app:lazy");
    const layers = pub.manifest.layers.map((l) => l.digest);
    // the mirror sees the public manifest, then the private one: both name the same lazy layers
    expect((await fetch(`${privMirror}/v2/app/manifests/${pub.digest}?ns=${registry.host}`, { headers: { accept: OCI_MANIFEST } })).status).toBe(200);
    const { digest: privDigest } = await privManifest("team/shared", "lazy");
    expect(privDigest).toBe(pub.digest);
    expect((await fetch(`${privMirror}/v2/team/shared/manifests/${privDigest}?ns=${priv.host}`, { headers: { accept: OCI_MANIFEST, authorization: basic } })).status).toBe(200);
    priv.freeze();
    try {
      const before = await metric("shoal_mirror_blob_bytes_total", 'source="swarm"', privMetrics);
      for (const d of layers) {
        const r = await fetch(`${privMirror}/v2/app/blobs/${d}?ns=${registry.host}`, { signal: AbortSignal.timeout(15_000) });
        expect(r.status, d).toBe(200);
        expect(await blobDigest(r)).toBe(d);
      }
      // assembled by the host's own fetch path from the public registry, not left to the origin fallback after a stall on the private one
      const bytes = pub.manifest.layers.reduce((n, l) => n + l.size, 0);
      expect(await metric("shoal_mirror_blob_bytes_total", 'source="swarm"', privMetrics) - before).toBeGreaterThan(bytes / 2);
    } finally {
      priv.thaw();
    }
  });
});
