// The quick-start demo: a registry on loopback, a sample image converted to
// a lazy image, read lazily with `shoal ls`/`shoal cat`, then mounted by an
// agent and run with chroot. Prints what each step fetched. Cleans up.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxImage, pushLayout, startRegistry, writeImageLayout } from "@shoal/testkit";
import { startAgent } from "../agent/test/agent-harness.ts";
import { unmountAllUnder } from "../agent/test/mounts.ts";

const MAIN = new URL("../agent/src/cli/main.ts", import.meta.url).pathname;
const say = (s: string) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);

function shoal(args: string[], opts: { quiet?: boolean } = {}): string {
  console.log(`$ shoal ${args.join(" ")}`);
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  if (r.stderr) process.stdout.write(r.stderr.replace(/^(?=.)/gm, "  "));
  if (r.stdout && !opts.quiet) process.stdout.write(r.stdout.replace(/^(?=.)/gm, "  "));
  if (r.status !== 0) throw new Error(`shoal ${args[0]} failed (exit ${r.status})`);
  return r.stdout;
}

const work = await mkdtemp(join(tmpdir(), "shoal-demo-"));
const registry = await startRegistry();
let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
try {
  say(`a Debian docker-registry on ${registry.host}`);
  const layout = await writeImageLayout(join(work, "layout"), busyboxImage({ dataBytes: 32 << 20 }), { tag: "v1" });
  await pushLayout(layout.dir, "v1", `${registry.host}/demo/busybox:v1`);
  console.log(`pushed ${registry.host}/demo/busybox:v1 (busybox + 32 MiB of data, ${layout.layers.length} layers)`);

  say("convert it into a lazy image");
  shoal(["convert", "--plain-http", `${registry.host}/demo/busybox:v1`, `${registry.host}/demo/busybox:lazy`]);

  say("list and read files lazily: indexes and the chunks needed, nothing else");
  shoal(["ls", "--plain-http", "--stats", `${registry.host}/demo/busybox:lazy`, "/app"]);
  shoal(["cat", "--plain-http", "--stats", `${registry.host}/demo/busybox:lazy`, "/app/run.sh"]);

  say("start an agent and mount the image lazily");
  const root = join(work, "agent");
  agent = await startAgent(root, ["--plain-http", "--prefetch", "off"]);
  const mnt = join(work, "rootfs");
  await mkdir(mnt);
  await registry.settle();
  await registry.resetStats();
  shoal(["mount", "--root", root, `${registry.host}/demo/busybox:lazy`, mnt]);

  say("run a program from the lazy mount");
  console.log(`$ chroot ${mnt} /app/run.sh`);
  process.stdout.write(execFileSync("chroot", [mnt, "/app/run.sh"], { encoding: "utf8" }).replace(/^(?=.)/gm, "  "));
  await registry.settle();
  const s = registry.stats();
  console.log(`registry served ${(s.blobBytes / 1024).toFixed(0)} KiB in ${s.blobRequests} blob requests for mount + run (the image is ${(layout.layers.reduce((n, l) => n + l.size, 0) / 1048576).toFixed(1)} MiB)`);
  shoal(["status", "--root", root]);
  shoal(["umount", "--root", root, mnt]);
  say("done");
} finally {
  await agent?.stop();
  await unmountAllUnder(work);
  await registry.stop();
  await rm(work, { recursive: true, force: true });
}
