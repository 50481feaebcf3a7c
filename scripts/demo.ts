// The quick-start demo: a registry on loopback, a sample image converted to
// a lazy image, read lazily with `shoal ls`/`shoal cat`, mounted by an agent
// and run with chroot; then a supernode and two agents in a swarm, the
// second served by the first. Prints what each step fetched. Cleans up.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import { AgentClient } from "@shoal/agent/client";
import {
  busyboxImage, freePort, pushLayout, runShoal, startAgent, startRegistry, startSupernode, writeImageLayout, unmountAllUnder, type RunningAgent, type ShoalDaemon,
} from "@shoal/testkit";

const run = promisify(execFile);
const say = (s: string) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);

async function shoal(args: string[], opts: { quiet?: boolean } = {}): Promise<string> {
  console.log(`$ shoal ${args.join(" ")}`);
  // asynchronously: this process reads the registry's log pipe and must keep reading it
  const ran = await runShoal(args);
  const r = { code: ran.code, stdout: ran.stdout.toString(), stderr: ran.stderr };
  if (r.stderr) process.stdout.write(r.stderr.replace(/^(?=.)/gm, "  "));
  if (r.stdout && !opts.quiet) process.stdout.write(r.stdout.replace(/^(?=.)/gm, "  "));
  if (r.code !== 0) throw new Error(`shoal ${args[0]} failed (exit ${r.code})`);
  return r.stdout;
}

const work = await mkdtemp(join(tmpdir(), "shoal-demo-"));
const registry = await startRegistry();
let agent: RunningAgent | undefined;
let supernode: ShoalDaemon | undefined;
const swarm: RunningAgent[] = [];
try {
  say(`a Debian docker-registry on ${registry.host}`);
  const layout = await writeImageLayout(join(work, "layout"), busyboxImage({ dataBytes: 32 << 20 }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/demo/busybox:v1`);
  console.log(`pushed ${registry.host}/demo/busybox:v1 (busybox + 32 MiB of data, ${layout.layers.length} layers)`);

  say("convert it into a lazy image");
  await shoal(["convert", "--plain-http", `${registry.host}/demo/busybox:v1`, `${registry.host}/demo/busybox:lazy`]);

  say("list and read files lazily: indexes and the chunks needed, nothing else");
  await shoal(["ls", "--plain-http", "--stats", `${registry.host}/demo/busybox:lazy`, "/app"]);
  await shoal(["cat", "--plain-http", "--stats", `${registry.host}/demo/busybox:lazy`, "/app/run.sh"]);

  say("start an agent and mount the image lazily");
  const root = join(work, "agent");
  agent = await startAgent(root, ["--plain-http", "--prefetch", "off"]);
  const mnt = join(work, "rootfs");
  await mkdir(mnt);
  await registry.settle();
  await registry.resetStats();
  await shoal(["mount", "--root", root, `${registry.host}/demo/busybox:lazy`, mnt]);

  say("run a program from the lazy mount");
  console.log(`$ chroot ${mnt} /app/run.sh`);
  process.stdout.write((await run("chroot", [mnt, "/app/run.sh"])).stdout.replace(/^(?=.)/gm, "  "));
  await registry.settle();
  const s = registry.stats();
  console.log(`registry served ${(s.blobBytes / 1024).toFixed(0)} KiB in ${s.blobRequests} blob requests for mount + run (the image is ${(layout.layers.reduce((n, l) => n + l.size, 0) / 1048576).toFixed(1)} MiB)`);
  await shoal(["status", "--root", root]);
  await shoal(["umount", "--root", root, mnt]);
  await agent.stop();
  agent = undefined;

  say("a supernode and two agents in a swarm: the second agent's chunks come from the first and the supernode");
  const snPort = await freePort();
  const snUrl = `http://127.0.0.1:${snPort}`;
  const keyFile = join(work, "swarm.key");
  await writeFile(keyFile, formatSwarmKey(generateSwarmKey()));
  // with the swarm key the supernode's tracker takes the agents' (sealed) announces
  supernode = await startSupernode(join(work, "supernode"), snPort, ["--registries", registry.host, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn"]);
  console.log(`supernode at ${snUrl}`);
  const swarmArgs = ["--plain-http", "--prefetch", "off", "--supernode", snUrl, "--swarm-key", keyFile, "--p2p-listen", "/ip4/127.0.0.1/tcp/0"];
  const first = await startAgent(join(work, "agent-1"), swarmArgs);
  swarm.push(first);
  const second = await startAgent(join(work, "agent-2"), swarmArgs);
  swarm.push(second);
  for (const [i, a] of [first, second].entries()) {
    const dir = join(work, `rootfs-${i + 1}`);
    await mkdir(dir);
    await shoal(["mount", "--root", a.root, `${registry.host}/demo/busybox:lazy`, dir]);
    console.log(`$ sha256sum ${dir}/app/data.bin   # agent ${i + 1} reads 32 MiB`);
    // asynchronously: this process reads the registry's log pipe, and must keep reading it
    process.stdout.write((await run("sha256sum", [join(dir, "app/data.bin")])).stdout.replace(/^(?=.)/gm, "  "));
    const st = await new AgentClient({ root: a.root }).status();
    const by = Object.entries(st.sources).filter(([src]) => src !== "cache").map(([src, t]) => `${src} ${(t.bytes / 1048576).toFixed(1)} MiB`).join(", ");
    console.log(`agent ${i + 1} fetched: ${by || "nothing"}`);
  }
  say("done");
} finally {
  await agent?.stop();
  for (const a of swarm) await a.stop();
  await supernode?.stop();
  await unmountAllUnder(work);
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
