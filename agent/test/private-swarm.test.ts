// A private image through a supernode: the agent passes the host's registry credentials (docker
// config) with its requests, the supernode checks them with the registry and serves its cache, so
// with --origin-fallback false the reads still work, and no secret reaches a log.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseReference, RegistryClient, staticCredentials } from "@shoal/oci";
import { callAgent } from "@shoal/agent/client";
import {
  busyboxImage, freePort, pushLayout, runShoal, startAgent, startRegistry, startSupernode, unmountAllUnder, writeImageLayout,
  type RunningAgent, type RunningRegistry, type ShoalDaemon,
} from "@shoal/testkit";

const user = "shoal-user";
const password = "pr1vate-Passw0rd-for-the-swarm";

let work: string;
let open: RunningRegistry;
let priv: RunningRegistry;
let supernode: ShoalDaemon | undefined;
let agent: RunningAgent | undefined;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-private-swarm-"));
  open = await startRegistry();
  priv = await startRegistry({ htpasswd: { user, password } });
  const layout = await writeImageLayout(join(work, "src"), busyboxImage({ dataBytes: 1 << 20, marker: "private" }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${open.host}/app:v1`);
  const conv = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "65536", `${open.host}/app:v1`, `${open.host}/app:lazy`]);
  expect(conv.code, conv.stderr).toBe(0);
  // the lazy image, copied into the private registry
  const src = new RegistryClient({}, { registry: open.host, plainHttp: true });
  const dst = new RegistryClient({ credentials: staticCredentials({ [priv.host]: { username: user, password } }) }, { registry: priv.host, plainHttp: true });
  try {
    const m = await src.resolveImage(parseReference(`${open.host}/app:lazy`));
    for (const d of [m.manifest.config, ...m.manifest.layers]) await dst.pushBlob("team/app", d.digest, d.size, await src.getBlob("app", d.digest, { maxSize: 1 << 30 }));
    await dst.putManifest("team/app", "lazy", m.bytes, m.mediaType);
  } finally {
    await src.close();
    await dst.close();
  }
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await supernode?.stop();
  if (work) await unmountAllUnder(work);
  await open?.stop();
  await priv?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("a private image through the supernode", () => {
  it("reads with --origin-fallback false: the agent's credentials reach the supernode's access check", async () => {
    const port = await freePort();
    supernode = await startSupernode(join(work, "supernode"), port, ["--registries", priv.host, "--log-level", "debug"]);
    const docker = join(work, "docker");
    await mkdir(docker, { recursive: true });
    await writeFile(join(docker, "config.json"), JSON.stringify({ auths: { [priv.host]: { auth: Buffer.from(`${user}:${password}`).toString("base64") } } }));
    agent = await startAgent(join(work, "agent"), ["--plain-http", "--prefetch", "off", "--origin-fallback", "false", "--supernode", `http://127.0.0.1:${port}`, "--fetch-timeout", "5s", "--log-level", "debug"], { env: { DOCKER_CONFIG: docker } });
    const dir = join(work, "mnt");
    await mkdir(dir);
    await callAgent(agent.root, "POST", "/v1/mounts", { image: `${priv.host}/team/app:lazy`, mountpoint: dir });
    expect(await readFile(join(dir, "app/run.sh"), "utf8")).toContain("hello from a lazy image");
    expect((await readFile(join(dir, "app/data.bin"))).length).toBe(1 << 20);
    const status = await callAgent<{ sources: Record<string, { chunks: number }> }>(agent.root, "GET", "/v1/status");
    expect(status.sources.supernode?.chunks ?? 0).toBeGreaterThan(0);
    expect(status.sources.origin).toBeUndefined();
    // no secret in either log
    for (const log of [supernode.logs(), agent.logs()]) {
      expect(log).not.toContain(password);
      expect(log).not.toContain(Buffer.from(`${user}:${password}`).toString("base64"));
    }
  });
});
