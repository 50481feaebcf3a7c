// The release artifact on a host that has nothing: `npm run release`'s
// Debian package installed with dpkg into a clean Debian 12 root
// (`debootstrap --variant=minbase`, no Node in it), then used there through
// chroot: `shoal --version`, `shoal convert` of the demo image on a registry
// on loopback, an agent that mounts it lazily (block mode), and a program
// run from the mounted image; then an upgrade (the package installed over
// itself, the agent restarted) while the image stays mounted. And the same release as an OCI image, run by
// containerd as the Kubernetes manifests run it: privileged, host network,
// its agent mounting an image and running a program from it.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { busyboxImage, pushLayout, run, startContainerd, startRegistry, unmountAllUnder, waitFor, writeImageLayout, type RunningRegistry } from "@shoal/testkit";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
/** The minbase root is kept here between runs (a clean clone makes it anew). */
const ROOT_CACHE = join(repo, ".cache/debootstrap-bookworm-minbase.tar");
const MIRROR = "http://deb.debian.org/debian";

let work: string;
let root: string;
let registry: RunningRegistry;
let agent: ChildProcess | undefined;
let version: string;

/** The installed agent started in the clean root; resolves once it answers `shoal status`. */
async function startAgentInRoot(): Promise<void> {
  const log = openSync(join(work, "agent.log"), "a");
  agent = spawn("chroot", [root, "/usr/bin/shoal", "agent", "--config", "/etc/shoal/agent.json", "--plain-http"], { stdio: ["ignore", log, log], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" } });
  closeSync(log);
  const started = agent;
  await waitFor("the agent in the clean root to answer", async () => {
    if (started.exitCode !== null) throw new Error(`the agent exited (${started.exitCode}): ${await readFile(join(work, "agent.log"), "utf8")}`);
    return (await inRoot("shoal", "status", "--root", "/var/lib/shoal").then(() => true, () => false)) ? true : undefined;
  }, 30_000);
}

/** `cmd` run inside the clean root. */
const inRoot = (cmd: string, ...args: string[]) => run("chroot", [root, cmd, ...args], { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", HOME: "/root" } });

async function cleanRoot(dir: string): Promise<void> {
  if (!existsSync(ROOT_CACHE)) {
    const fresh = `${dir}.debootstrap`;
    await run("debootstrap", ["--variant=minbase", "bookworm", fresh, MIRROR]);
    await mkdir(join(repo, ".cache"), { recursive: true });
    await run("tar", ["-C", fresh, "-cf", `${ROOT_CACHE}.tmp`, "."]);
    await run("mv", [`${ROOT_CACHE}.tmp`, ROOT_CACHE]);
    await rm(fresh, { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true });
  await run("tar", ["-C", dir, "-xf", ROOT_CACHE]);
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-release-"));
  root = join(work, "root");
  version = (JSON.parse(await readFile(join(repo, "cli/package.json"), "utf8")) as { version: string }).version;
  await run(process.execPath, [join(repo, "scripts/release/main.ts"), "--out", join(work, "dist")]);
  await cleanRoot(root);
  await cp(join(work, "dist", `shoal_${version}_amd64.deb`), join(root, "tmp/shoal.deb"));
  for (const [fs, dir] of [["proc", "proc"], ["sysfs", "sys"]] as const) await run("mount", ["-t", fs, fs, join(root, dir)]);
  await run("mount", ["--bind", "/dev", join(root, "dev")]);
  registry = await startRegistry();
}, 900_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    const gone = new Promise((r) => agent!.once("exit", r));
    agent.kill("SIGTERM");
    await gone;
  }
  if (root) {
    const keeper = Number((await readFile(join(root, "var/lib/shoal/fuse-keeper.pid"), "utf8").catch(() => "")).trim());
    if (keeper > 0) {
      try {
        process.kill(keeper, "SIGTERM");
      } catch { /* gone already */ }
    }
  }
  if (work) await unmountAllUnder(work);
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
}, 120_000);

describe("the release artifact in a clean Debian root", () => {
  it("installs with dpkg where there is no Node, says its version, its agent mounts an image and runs a program from it, and an upgrade keeps it mounted", async () => {
    await expect(inRoot("sh", "-c", "command -v node || ls /usr/local/bin/node /usr/bin/nodejs")).rejects.toThrow();
    await inRoot("dpkg", "-i", "/tmp/shoal.deb");
    expect((await inRoot("shoal", "--version")).stdout).toMatch(new RegExp(`^shoal ${version.replace(/\./g, "\\.")} \\(commit [0-9a-f]{12}(-dirty)?\\)\\n$`));
    for (const unit of ["shoal-agent", "shoal-fuse-keeper", "shoal-supernode"]) expect(existsSync(join(root, `lib/systemd/system/${unit}.service`))).toBe(true);
    expect(JSON.parse(await readFile(join(root, "etc/shoal/agent.json"), "utf8"))).toHaveProperty("root", "/var/lib/shoal");

    const layout = await writeImageLayout(join(work, "layout"), busyboxImage({ dataBytes: 4 << 20, marker: "release" }), { tag: "v1" });
    await pushLayout(layout.dir, "v1", `${registry.host}/demo:v1`);
    await inRoot("shoal", "convert", "--plain-http", `${registry.host}/demo:v1`, `${registry.host}/demo:lazy`);

    await startAgentInRoot();
    await inRoot("mkdir", "-p", "/mnt/demo");
    await inRoot("shoal", "mount", "--root", "/var/lib/shoal", `${registry.host}/demo:lazy`, "/mnt/demo");
    const status = JSON.parse((await inRoot("shoal", "status", "--root", "/var/lib/shoal", "--json")).stdout) as { layers: { mode: string; block: number } };
    expect(status.layers).toMatchObject({ mode: "block", block: 2 });
    expect((await run("chroot", [join(root, "mnt/demo"), "/app/run.sh"])).stdout).toBe("hello from a lazy image\n");
    expect((await run("chroot", [join(root, "mnt/demo"), "/bin/busybox", "cat", "/etc/marker"])).stdout).toBe("release");

    // an upgrade: the agent stopped (its FUSE keeper holds the mount), the package installed over itself,
    // the agent started again from the new files (postinst's try-restart, under systemd) adopts the keeper
    const gone = new Promise((r) => agent!.once("exit", r));
    agent!.kill("SIGTERM");
    await gone;
    await run("sh", ["-c", "echo 3 > /proc/sys/vm/drop_caches"]);
    await inRoot("dpkg", "-i", "/tmp/shoal.deb");
    await startAgentInRoot();
    expect(await readFile(join(work, "agent.log"), "utf8")).toMatch(/"adopted":true/);
    expect((await run("chroot", [join(root, "mnt/demo"), "/bin/busybox", "md5sum", "/app/data.bin"])).stdout).toMatch(/^[0-9a-f]{32} /);
    expect((await run("chroot", [join(root, "mnt/demo"), "/app/run.sh"])).stdout).toBe("hello from a lazy image\n");
    await inRoot("shoal", "umount", "--root", "/var/lib/shoal", "/mnt/demo");
  }, 900_000);

  it("as an OCI image under containerd: shoal --version, and its agent mounts an image and runs a program from it", async () => {
    const containerd = await startContainerd(join(work, "containerd"));
    // runc keeps its state under /run, outside this test's directory: ids of this run only
    const ids = { version: `version-${process.pid}`, agent: `agent-${process.pid}` };
    try {
      const ctr = (...args: string[]) => run("ctr", ["--address", containerd.address, "-n", "release", ...args]);
      await ctr("image", "import", "--index-name", `shoal:${version}`, join(work, "dist", `shoal-${version}-oci.tar`));
      // bounded, so that a hang fails here and the finally below still cleans up
      const inImage = (id: string, script: string) => run("ctr", ["--address", containerd.address, "-n", "release", "run", "--rm", "--privileged", "--net-host", `shoal:${version}`, id, "/bin/sh", "-c", script], { signal: AbortSignal.timeout(120_000) });
      expect((await inImage(ids.version, "shoal --version")).stdout).toMatch(new RegExp(`^shoal ${version.replace(/\./g, "\\.")} \\(commit `));
      const layout = await writeImageLayout(join(work, "layout-oci"), busyboxImage({ dataBytes: 2 << 20, marker: "oci" }), { tag: "v1" });
      await pushLayout(layout.dir, "v1", `${registry.host}/oci-demo:v1`);
      const script = [
        `shoal convert --plain-http ${registry.host}/oci-demo:v1 ${registry.host}/oci-demo:lazy >/dev/null`,
        "shoal agent --root /var/lib/shoal --plain-http --log-level warn & agent=$!",
        "i=0; while [ ! -S /var/lib/shoal/agent.sock ]; do i=$((i+1)); [ $i -gt 300 ] && exit 3; sleep 0.1; done",
        `mkdir -p /mnt/demo && shoal mount --root /var/lib/shoal ${registry.host}/oci-demo:lazy /mnt/demo >/dev/null`,
        "/mnt/demo/bin/busybox sh /mnt/demo/app/run.sh; /mnt/demo/bin/busybox cat /mnt/demo/etc/marker; echo",
        "shoal umount --root /var/lib/shoal /mnt/demo; kill $agent; wait $agent",
      ].join("\n");
      expect((await inImage(ids.agent, script)).stdout).toBe("hello from a lazy image\noci\n");
    } finally {
      for (const id of Object.values(ids)) {
        await run("ctr", ["--address", containerd.address, "-n", "release", "task", "kill", "-s", "SIGKILL", id]).catch(() => undefined);
        await run("ctr", ["--address", containerd.address, "-n", "release", "task", "delete", "--force", id]).catch(() => undefined);
      }
      await containerd.stop();
    }
  }, 300_000);
});
