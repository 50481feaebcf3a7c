// The agent as containerd's remote snapshotter: a containerd 1.6 from Debian started by the test, its
// CRI plugin configured with the shoal snapshotter; `shoal pull` (CRI PullImage) of a converted image
// downloads no layer, `ctr run --snapshotter shoal` runs a program from it, and the container's tree
// equals umoci's unpack of the original. An unconverted image goes through the same snapshotter as
// ordinary snapshots.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SnapshotsClient, type SnapshotsCallError } from "@shoal/snapshotter";
import {
  buildRealisticImage, busyboxImage, diffTrees, FIRST_WORK_PYTHON, pushLayout, runShoal, runShoalOk, snapshotTree, startAgent, startContainerd, startRegistry, umociUnpack, unmountAllUnder, writeImageLayout,
  CriRuntime, type RunningAgent, type RunningContainerd, type RunningRegistry, type TreeSnapshot, waitFor, mountsUnder,
} from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withMounted } from "@shoal/snapshotter/testsuite";
import { callAgent } from "@shoal/agent/client";
import type { AgentStatus } from "../src/index.ts";

const run = promisify(execFile);

let work: string;
let registry: RunningRegistry;
let agent: RunningAgent;
let containerd: RunningContainerd;
let original: TreeSnapshot;
let diffIds: string[];
let imageBytes: number;
let plain: { tree: TreeSnapshot; diffIds: string[] };
let mixed: { tree: TreeSnapshot; diffIds: string[] };

// a short fetch timeout bounds the outage tests (a remote Prepare waits at most this long)
const AGENT_ARGS = ["--plain-http", "--prefetch", "off", "--fetch-timeout", "5s"];
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

async function manifestOf(repo: string, tag: string): Promise<{ layers: Array<{ size: number; annotations?: Record<string, string> }> } & Record<string, unknown>> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  return (await res.json()) as never;
}

/** Push `name` (a busybox image) as repo:v1 and return its tree and diffIDs. */
async function pushImage(repo: string, opts: { dataBytes: number; marker?: string }): Promise<{ tree: TreeSnapshot; diffIds: string[] }> {
  const layout = await writeImageLayout(join(work, `layout-${repo}`), busyboxImage(opts), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/${repo}:v1`);
  return { tree: await snapshotTree((await umociUnpack(layout.dir, "v1", join(work, `bundle-${repo}`))).rootfs), diffIds: layout.diffIds };
}

/** The chain ID of the top layer (containerd's snapshot name for it): identity.ChainID over the diffIDs. */
function chainId(ids: string[]): string {
  return ids.reduce((acc, d) => (acc ? `sha256:${createHash("sha256").update(`${acc} ${d}`).digest("hex")}` : d), "");
}

/** The labels containerd's CRI plugin sends with the Prepare of layer `position` of repo:tag (target: a made-up chain ID). */
async function remoteLabels(repo: string, tag: string, position: number): Promise<Record<string, string>> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { headers: { accept: OCI_MANIFEST } });
  const manifest = (await res.json()) as { layers: Array<{ digest: string; annotations?: Record<string, string> }> };
  const layer = manifest.layers[position]!;
  return {
    ...layer.annotations,
    "containerd.io/snapshot.ref": `sha256:${createHash("sha256").update(`${repo}:${tag}:${position}:${Math.random()}`).digest("hex")}`,
    "containerd.io/snapshot/cri.image-ref": `${registry.host}/${repo}:${tag}`,
    "containerd.io/snapshot/cri.layer-digest": layer.digest,
    "containerd.io/snapshot/cri.manifest-digest": res.headers.get("docker-content-digest")!,
  };
}

/**
 * The name under which containerd keeps its snapshot `name` in the agent:
 * the target itself for a remote snapshot, `NAMESPACE/ID/NAME` for one it committed.
 */
async function backendName(api: SnapshotsClient, name: string): Promise<string> {
  const all = await api.list();
  const found = all.find((i) => i.kind === "committed" && (i.name === name || i.name.endsWith(`/${name}`) || i.labels["containerd.io/snapshot.ref"] === name));
  if (!found) throw new Error(`no snapshot of containerd's named ${name} among ${JSON.stringify(all.map((i) => [i.name, i.kind, i.labels["containerd.io/snapshot.ref"]]))}`);
  return found.name;
}

/**
 * The agent's own snapshotter socket (no containerd in between). containerd's garbage collector
 * removes the backend's snapshots that its metadata does not know, so a key made here may be
 * gone by the time a test removes it: {@link removeDirect} allows that.
 */
const direct = () => new SnapshotsClient({ socket: join(agent.root, "snapshotter.sock") });

/** Remove `key` made through {@link direct}, unless containerd's garbage collector did already. */
async function removeDirect(api: SnapshotsClient, key: string): Promise<void> {
  await api.remove(key).catch((e: unknown) => {
    if ((e as SnapshotsCallError).status !== "NOT_FOUND") throw e;
  });
}

async function dropCaches(): Promise<void> {
  await run("sh", ["-c", "sync; echo 3 > /proc/sys/vm/drop_caches"]);
}

const ctr = (...args: string[]) => run("ctr", ["--address", containerd.address, "-n", "k8s.io", ...args], { maxBuffer: 1 << 24 });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-snap-e2e-"));
  registry = await startRegistry();
  ({ tree: original, diffIds } = await pushImage("app", { dataBytes: 16 << 20 }));
  const convert = (repo: string) => runShoalOk(["convert", "--plain-http", "--chunk-size", "65536", `${registry.host}/${repo}:v1`, `${registry.host}/${repo}:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
  await convert("app");
  imageBytes = (await manifestOf("app", "lazy")).layers.reduce((n, l) => n + l.size, 0);
  plain = await pushImage("plain", { dataBytes: 1 << 20, marker: "plain" });
  // a mixed image: the original (ordinary) base layer under the converted (lazy) app layer
  mixed = await pushImage("mixed", { dataBytes: 4 << 20, marker: "mixed" });
  await convert("mixed");
  const [ordinary, lazy] = [await manifestOf("mixed", "v1"), await manifestOf("mixed", "lazy")];
  const m = { ...lazy, layers: [ordinary.layers[0]!, lazy.layers[1]!] };
  const put = await fetch(`${registry.url}/v2/mixed/manifests/m`, { method: "PUT", headers: { "content-type": OCI_MANIFEST }, body: JSON.stringify(m) });
  expect(put.status).toBe(201);
  // the CRI plugin's pause image: busybox whose command sleeps
  const pause = await writeImageLayout(join(work, "layout-pause"), busyboxImage({ dataBytes: 4096, marker: "pause" }), { tag: "v1", config: { cmd: ["/bin/sleep", "86400"] } });
  await pushLayout(pause.dir, "v1", `${registry.host}/pause:v1`);
  // never pulled: its Prepare reaches the registry (for the outage tests)
  await pushImage("late", { dataBytes: 1 << 20, marker: "late" });
  await convert("late");
  // a lazy image (never mounted) whose bottom layer names an index digest its index bytes do not hash to
  const bad = await manifestOf("late", "lazy");
  const bottom = bad.layers[0]!;
  bottom.annotations = { ...bottom.annotations, "containerd.io/snapshot/shoal.index.digest": `sha256:${"ab".repeat(32)}` };
  const putBad = await fetch(`${registry.url}/v2/late/manifests/bad-index`, { method: "PUT", headers: { "content-type": OCI_MANIFEST }, body: JSON.stringify(bad) });
  expect(putBad.status).toBe(201);
  agent = await startAgent(join(work, "agent"), AGENT_ARGS);
  // containerd's CRI plugin speaks plain HTTP to the test registry through a hosts.toml
  const certs = join(work, "certs.d");
  await mkdir(join(certs, registry.host), { recursive: true });
  await writeFile(join(certs, registry.host, "hosts.toml"), `server = "${registry.url}"\n[host."${registry.url}"]\n  capabilities = ["pull", "resolve"]\n`);
  containerd = await startContainerd(join(work, "containerd"), {
    snapshotters: { shoal: join(agent.root, "snapshotter.sock") }, criSnapshotter: "shoal", criRegistryConfigPath: certs,
    criSandboxImage: `${registry.host}/pause:v1`,
  });
}, 180_000);

afterAll(async () => {
  await containerd?.stop();
  await agent?.stop();
  await registry?.stop();
  await unmountAllUnder(work);
  await rm(work, { recursive: true, force: true });
});

/** The tree of the image's top snapshot, through a view that containerd makes on the shoal snapshotter. */
async function viewTree(key: string, parent: string): Promise<TreeSnapshot> {
  const api = new SnapshotsClient({ socket: containerd.address, snapshotter: "shoal", namespace: "k8s.io" });
  try {
    // a gc.root label keeps containerd's garbage collector off a view that no lease holds
    const mounts = await api.view(key, parent, { "containerd.io/gc.root": new Date().toISOString() });
    try {
      return await withMounted(work, mounts, (dir) => snapshotTree(dir));
    } finally {
      await api.remove(key);
    }
  } finally {
    api.close();
  }
}

describe("the shoal snapshotter under containerd's CRI plugin", () => {
  it("pulls a converted image lazily: remote snapshots, under 5% of the image from the registry", async () => {
    await registry.settle();
    await registry.resetStats();
    const r = await runShoal(["pull", "--address", containerd.address, `${registry.host}/app:lazy`]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.toString()).toMatch(/^pulled .*app:lazy \(sha256:[0-9a-f]{64}\)/);
    await registry.settle();
    const st = registry.stats();
    expect(st.blobBytes / imageBytes).toBeLessThan(0.05);
    // every layer is a committed snapshot of the shoal snapshotter, named by its chain ID
    const { stdout } = await ctr("snapshots", "--snapshotter", "shoal", "ls");
    for (let i = 1; i <= diffIds.length; i++) expect(stdout).toContain(chainId(diffIds.slice(0, i)));
  });

  it("runs a program from it with ctr run --snapshotter shoal, and its tree equals umoci's", async () => {
    const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/app:lazy`, "lazy-run", "/app/run.sh");
    expect(stdout).toBe("hello from a lazy image\n");
    expect(diffTrees(original, await viewTree("tree-lazy", chainId(diffIds)), { layeredHardlinks: true })).toEqual([]);
  });

  it("runs a pod through CRI (RunPodSandbox, CreateContainer, StartContainer) on the lazy image", async () => {
    const cri = new CriRuntime(containerd.address);
    const logs = join(work, "pod-logs");
    await mkdir(logs, { recursive: true });
    const podConfig = CriRuntime.podConfig("lazy-pod", logs);
    let pod: string | undefined;
    let container: string | undefined;
    try {
      pod = await cri.runPod(podConfig);
      expect(await cri.podState(pod)).toBe("SANDBOX_READY");
      container = await cri.createContainer(pod, podConfig, {
        name: "app", image: `${registry.host}/app:lazy`, command: ["/bin/sh", "-c", "/app/run.sh; sha256sum /app/data.bin"], logPath: "app.log",
      });
      await cri.startContainer(container);
      const id = container;
      const status = await waitFor("the pod's container to exit", async () => {
        const s = await cri.containerStatus(id);
        return s.state === "CONTAINER_EXITED" ? s : undefined;
      });
      expect(status.exit_code, `${status.reason} ${status.message}`).toBe(0);
      // CRI's log format: TIME STREAM TAG LINE
      const lines = (await readFile(join(logs, "app.log"), "utf8")).trim().split("\n").map((l) => l.split(" ").slice(3).join(" "));
      const want = createHash("sha256").update(await readFile(join(work, "bundle-app", "rootfs", "app", "data.bin"))).digest("hex");
      expect(lines).toEqual(["hello from a lazy image", `${want}  /app/data.bin`]);
      // the container's root is a snapshot of the shoal snapshotter
      const { stdout } = await ctr("containers", "info", container);
      expect((JSON.parse(stdout) as { Snapshotter: string }).Snapshotter).toBe("shoal");
    } finally {
      if (container) await cri.removeContainer(container).catch(() => undefined);
      if (pod) await cri.removePod(pod).catch(() => undefined);
      cri.close();
    }
  });

  it("takes an unconverted image through the same snapshotter as ordinary snapshots", async () => {
    const r = await runShoal(["pull", "--address", containerd.address, `${registry.host}/plain:v1`]);
    expect(r.code, r.stderr).toBe(0);
    const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/plain:v1`, "plain-run", "/bin/cat", "/etc/marker");
    expect(stdout).toBe("plain");
    expect(diffTrees(plain.tree, await viewTree("tree-plain", chainId(plain.diffIds)), { layeredHardlinks: true })).toEqual([]);
  });

  it("stacks a lazy layer on an ordinary one in one chain", async () => {
    const r = await runShoal(["pull", "--address", containerd.address, `${registry.host}/mixed:m`]);
    expect(r.code, r.stderr).toBe(0);
    const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/mixed:m`, "mixed-run", "/bin/sh", "-c", "cat /etc/marker; /app/run.sh");
    expect(stdout).toBe("mixedhello from a lazy image\n");
    expect(diffTrees(mixed.tree, await viewTree("tree-mixed", chainId(mixed.diffIds)), { layeredHardlinks: true })).toEqual([]);
    // the app layer is the shoal agent's: a remote snapshot, the base one an ordinary one containerd filled
    const status = JSON.parse((await runShoalOk(["status", "--root", agent.root, "--json"]))) as { images: Array<{ image: string }> };
    expect(status.images.some((i) => i.image.includes("/mixed@sha256:"))).toBe(true);
  });

  it("keeps a running container reading across a SIGKILL of the agent; a second container then fetches nothing again", async () => {
    // the container hashes its files in a loop; its output goes to a file on the host
    const out = join(work, "reader.out");
    const loop = "i=0; while :; do sha256sum /app/data.bin /bin/busybox || echo FAIL; i=$((i+1)); echo pass $i; done";
    await ctr("run", "-d", "--snapshotter", "shoal", "--log-uri", `file://${out}`, `${registry.host}/app:lazy`, "reader", "/bin/sh", "-c", loop);
    const text = () => readFile(out, "utf8").catch(() => "");
    const passes = async () => Number(/pass (\d+)\n(?![\s\S]*pass)/.exec(await text())?.[1] ?? 0);
    try {
      await waitFor("the reader's first passes", async () => ((await passes()) >= 2 ? true : undefined));
      expect((await callAgent<AgentStatus>(agent.root, "GET", "/v1/status")).layers.block).toBeGreaterThan(0);
      await agent.kill();
      // every page, dentry and inode dropped: the reads go to FUSE while no agent runs, with node ids the kernel holds
      await dropCaches();
      const before = await passes();
      agent = await startAgent(agent.root, AGENT_ARGS);
      await dropCaches();
      await waitFor("passes after the restart", async () => ((await passes()) >= before + 3 ? true : undefined));
    } finally {
      await ctr("task", "kill", "-s", "SIGKILL", "reader").catch(() => undefined);
      await waitFor("the reader to stop", async () => ((await ctr("task", "ls")).stdout.includes("reader") ? undefined : true), 30_000).catch(() => undefined);
      await ctr("container", "delete", "reader").catch(() => undefined);
    }
    const lines = (await text()).split("\n");
    expect(lines.filter((l) => /FAIL|No such|error/i.test(l))).toEqual([]);
    const hashes = new Set(lines.filter((l) => l.endsWith("/app/data.bin")));
    expect(hashes.size).toBe(1);
    // the restarted agent adopted the connection: every chunk the second container reads is local
    await registry.settle();
    await registry.resetStats();
    const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/app:lazy`, "second", "/bin/sh", "-c", "sha256sum /app/data.bin");
    expect(hashes.has(stdout.trim())).toBe(true);
    await registry.settle();
    expect(registry.stats().blobBytes).toBe(0);
  }, 180_000);

  it("survives a containerd restart: a running container, the snapshots and new containers", async () => {
    await ctr("run", "-d", "--snapshotter", "shoal", `${registry.host}/app:lazy`, "sleeper", "/bin/sleep", "600");
    try {
      await containerd.restart();
      expect((await ctr("task", "ls")).stdout).toMatch(/sleeper\s+\d+\s+RUNNING/);
      const { stdout: snapshots } = await ctr("snapshots", "--snapshotter", "shoal", "ls");
      expect(snapshots).toContain(chainId(diffIds));
      const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/app:lazy`, "after-restart", "/app/run.sh");
      expect(stdout).toBe("hello from a lazy image\n");
    } finally {
      await ctr("task", "kill", "-s", "SIGKILL", "sleeper").catch(() => undefined);
      await waitFor("the sleeper to stop", async () => ((await ctr("task", "ls")).stdout.includes("sleeper") ? undefined : true), 30_000).catch(() => undefined);
      await ctr("container", "delete", "sleeper").catch(() => undefined);
    }
  });

  it("after a reboot (every mount gone) restores every committed snapshot from its metadata, without the network", async () => {
    // the reboot: containerd and the agent stop, the keeper too, and nothing stays mounted
    await containerd.stop();
    await agent.stop();
    await unmountAllUnder(agent.root);
    expect(await mountsUnder(work)).toEqual([]);
    await registry.halt();
    try {
      agent = await startAgent(agent.root, AGENT_ARGS);
      await containerd.restart();
      // every chunk of app:lazy was read before: the whole tree comes back with the registry down
      expect(diffTrees(original, await viewTree("tree-after-reboot", chainId(diffIds)), { layeredHardlinks: true })).toEqual([]);
      const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/app:lazy`, "after-reboot", "/app/run.sh");
      expect(stdout).toBe("hello from a lazy image\n");
    } finally {
      await registry.restart();
    }
  });

  it("refuses bad Prepares with a clear gRPC error, creating nothing, and stays up", async () => {
    const api = direct();
    try {
      const refused = async (p: Promise<unknown>) => p.then(() => "accepted", (e: unknown) => (e as SnapshotsCallError).status);
      // labels that do not parse
      const labels = await remoteLabels("app", "lazy", 1);
      expect(await refused(api.prepare("bad-labels", "", { ...labels, "containerd.io/snapshot/shoal.index.digest": "sha256:nope" }))).toBe("INVALID_ARGUMENT");
      expect(await refused(api.stat("bad-labels"))).toBe("NOT_FOUND");
      // an index that fails its digest: refused, not left to containerd
      const badIndex = await remoteLabels("late", "bad-index", 0);
      expect(await refused(api.prepare("bad-index", "", badIndex))).toBe("FAILED_PRECONDITION");
      expect(await refused(api.stat("bad-index"))).toBe("NOT_FOUND");
      expect(await refused(api.stat(badIndex["containerd.io/snapshot.ref"]!))).toBe("NOT_FOUND");
      // a parent that does not exist; a key reused
      expect(await refused(api.prepare("orphan", "no-such-parent"))).toBe("NOT_FOUND");
      await api.prepare("reused", "");
      expect(await refused(api.prepare("reused", ""))).toBe("ALREADY_EXISTS");
      // removed while mounted: refused and kept; removed once unmounted
      const mounts = await api.prepare("in-use", await backendName(api, chainId(diffIds)));
      await withMounted(work, mounts, async () => {
        expect(await refused(api.remove("in-use"))).toBe("FAILED_PRECONDITION");
        expect((await api.stat("in-use")).kind).toBe("active");
      });
      await removeDirect(api, "in-use");
      await removeDirect(api, "reused");
      expect(await refused(api.stat("in-use"))).toBe("NOT_FOUND");
      // the agent is up
      expect((await runShoalOk(["status", "--root", agent.root])).toString()).toMatch(/^agent root /);
    } finally {
      api.close();
    }
  });

  it("with the registry down at a lazy Prepare: refused everywhere makes an ordinary snapshot, a hang UNAVAILABLE in bounded time", async () => {
    const api = direct();
    try {
      const base = await remoteLabels("late", "lazy", 0);
      await registry.halt();
      try {
        // nothing can serve the layer (connections refused): containerd gets an ordinary snapshot to fill
        const mounts = await api.prepare("late-refused", "", base);
        expect(mounts[0]?.type).toBe("bind");
        expect((await api.stat("late-refused")).kind).toBe("active");
        await removeDirect(api, "late-refused");
      } finally {
        await registry.restart();
      }
      registry.freeze();
      try {
        const hung = await api.prepare("late-hung", "", base).then(() => "accepted", (e: unknown) => (e as SnapshotsCallError).status);
        expect(hung).toBe("UNAVAILABLE");
        expect(await api.stat("late-hung").then(() => "found", (e: unknown) => (e as SnapshotsCallError).status)).toBe("NOT_FOUND");
      } finally {
        registry.thaw();
      }
    } finally {
      api.close();
    }
  }, 60_000);

  it("runs python3 from the realistic image (Debian 12 + python3 + nginx), its tree equal to umoci's", async () => {
    // built with debootstrap on first use (about a minute) and cached beside the benches' copy
    const image = await buildRealisticImage(fileURLToPath(new URL("../../.cache/realistic-image", import.meta.url)));
    await pushLayout(image.layoutDir, image.tag, `${registry.host}/realistic:v1`);
    await runShoalOk(["convert", "--plain-http", `${registry.host}/realistic:v1`, `${registry.host}/realistic:lazy`], { env: { XDG_CACHE_HOME: join(work, "cache") } });
    const want = await snapshotTree((await umociUnpack(image.layoutDir, image.tag, join(work, "bundle-realistic"))).rootfs);
    await rm(join(work, "bundle-realistic"), { recursive: true, force: true });
    await registry.settle();
    await registry.resetStats();
    await runShoalOk(["pull", "--address", containerd.address, `${registry.host}/realistic:lazy`]);
    const { stdout } = await ctr("run", "--rm", "--snapshotter", "shoal", `${registry.host}/realistic:lazy`, "python", "/usr/bin/python3", "-c", `${FIRST_WORK_PYTHON}; print("imported")`);
    expect(stdout).toBe("imported\n");
    // the snapshot's layer was an erofs filesystem over its stream (block mode, the default)
    const layers = (await callAgent<AgentStatus>(agent.root, "GET", "/v1/status")).layers;
    expect(layers.mode).toBe("block");
    expect(layers.block).toBeGreaterThan(0);
    // python and its imports, not the image: a fraction of it from the registry
    await registry.settle();
    const lazyBytes = (await manifestOf("realistic", "lazy")).layers.reduce((n, l) => n + l.size, 0);
    expect(registry.stats().blobBytes / lazyBytes).toBeLessThan(0.5);
    expect(diffTrees(want, await viewTree("tree-realistic", chainId(image.layers.map((l) => l.diffId))), { layeredHardlinks: true })).toEqual([]);
  }, 400_000);

  it("refuses what it cannot do with one clear line", async () => {
    const wrongNs = await runShoal(["pull", "--address", containerd.address, "--namespace", "default", `${registry.host}/app:lazy`]);
    expect(wrongNs.code).toBe(1);
    expect(wrongNs.stderr).toMatch(/^shoal: .*k8s\.io.* \[SHOAL_ERR_INVALID_ARGUMENT\]\n$/);
    const noContainerd = await runShoal(["pull", "--address", join(work, "nothing.sock"), `${registry.host}/app:lazy`]);
    expect(noContainerd.code).toBe(1);
    expect(noContainerd.stderr).toMatch(/^shoal: .*is containerd running there\? \[SHOAL_ERR_CONTAINERD_UNAVAILABLE\]\n$/);
  });
});
