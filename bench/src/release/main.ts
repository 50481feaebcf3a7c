// The release artifact against running from a clone: its size, and how long
// commands take to start, in the same run. One agent (from the artifact)
// (prefetch off: only the commands' own work is timed) serves every client;
// each command runs --runs times, one at a time:
//   artifact   the tarball of `npm run release`, extracted (its own Node, the bundled code)
//   source     node cli/src/main.ts with the repository's Node 24 on the PATH (type stripping)
//   npx        npx shoal, as a clone's README told users
//   node bench/src/release/main.ts [--runs 10] [--dist DIR] [--json]
// Needs root (FUSE), docker-registry, skopeo. Not in CI.
import { spawn, spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { busyboxImage, pushLayout, runShoalOk, startRegistry, unmountAllUnder, waitFor, writeImageLayout } from "@shoal/testkit";
import { installExitHook, liveProcs, liveWorkDirs } from "../leftovers.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" }, dist: { type: "string" }, json: { type: "boolean", default: false } } });
const RUNS = Number(values.runs);
const repo = fileURLToPath(new URL("../../..", import.meta.url));
const log = (s: string) => console.error(`[release-bench ${new Date().toISOString().slice(11, 19)}] ${s}`);
const PATH = `${join(repo, "node_modules/.bin")}:${process.env.PATH}`;

installExitHook();
const work = await mkdtemp(join(tmpdir(), "shoal-release-bench-"));
liveWorkDirs.add(work);
const dist = values.dist ?? join(work, "dist");
if (!values.dist) {
  log("npm run release");
  const r = spawnSync(process.execPath, [join(repo, "scripts/release/main.ts"), "--out", dist], { stdio: ["ignore", process.stderr, "inherit"] });
  if (r.status !== 0) throw new Error("release failed");
}
const files = (await readdir(dist)).filter((f) => f.startsWith("shoal"));
const deb = join(dist, files.find((f) => f.endsWith(".deb"))!);
const tarball = join(dist, files.find((f) => f.endsWith(".tar.gz"))!);
const inst = join(work, "inst");
await mkdir(inst);
spawnSync("tar", ["-C", inst, "-xzf", tarball]);
const installedBytes = Number(spawnSync("du", ["-sb", inst], { encoding: "utf8" }).stdout.split("\t")[0]);
const sizes = { deb: (await stat(deb)).size, tarball: (await stat(tarball)).size };

const registry = await startRegistry();
const layout = await writeImageLayout(join(work, "layout"), busyboxImage({ dataBytes: 4 << 20, marker: "bench" }), { tag: "v1" });
await pushLayout(layout.dir, "v1", `${registry.host}/demo:v1`);
const image = `${registry.host}/demo:lazy`;
await runShoalOk(["convert", "--plain-http", `${registry.host}/demo:v1`, image], { env: { XDG_CACHE_HOME: join(work, "cache") } });

const artifact = [join(inst, "usr/bin/shoal")];
const root = join(work, "root");
const agent = spawn(artifact[0]!, ["agent", "--root", root, "--plain-http", "--prefetch", "off", "--log-level", "warn"], { stdio: "ignore" });
liveProcs.add(agent);
await waitFor("the artifact's agent to listen", async () => ((await stat(join(root, "agent.sock")).catch(() => undefined)) ? true : undefined), 30_000);

const clients: Record<string, string[]> = { artifact, source: [process.execPath, join(repo, "cli/src/main.ts")], npx: ["npx", "shoal"] };
type Timing = { min: number; median: number; max: number };
const results: Record<string, Record<string, Timing>> = {};

function timed(argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: repo, env: { ...process.env, PATH }, encoding: "utf8" });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`${argv.join(" ")}: exit ${r.status}: ${r.stderr}`);
  return ms;
}
const stats = (xs: number[]): Timing => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s.at(-1)! };
};

try {
  const mnt = join(work, "mnt");
  await mkdir(mnt);
  for (const [name, cli] of Object.entries(clients)) {
    log(`timing ${name}`);
    const version: number[] = [];
    const status: number[] = [];
    const mount: number[] = [];
    timed([...cli, "--help"]); // warm the page cache and Node's compile cache
    for (let i = 0; i < RUNS; i++) {
      version.push(timed([...cli, "--version"]));
      status.push(timed([...cli, "status", "--root", root]));
      mount.push(timed([...cli, "mount", "--root", root, image, mnt]));
      timed([...cli, "umount", "--root", root, mnt]);
    }
    results[name] = { version: stats(version), status: stats(status), mount: stats(mount) };
  }
} finally {
  agent.kill("SIGTERM");
  await new Promise((r) => agent.once("exit", r));
  await unmountAllUnder(work);
  await registry.stop();
  await rm(work, { recursive: true, force: true });
  liveWorkDirs.delete(work);
}

const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
const fmt = (t: Timing) => `${(t.median / 1000).toFixed(3)} s (${(t.min / 1000).toFixed(3)}–${(t.max / 1000).toFixed(3)})`;
console.log(`artifact: deb ${mib(sizes.deb)}, tarball ${mib(sizes.tarball)}, installed ${mib(installedBytes)}`);
console.log(`command start, median (min–max) of ${RUNS}:`);
for (const cmd of ["version", "status", "mount"]) {
  const a = results.artifact![cmd]!;
  console.log(`  shoal ${(cmd === "version" ? "--version" : cmd).padEnd(9)} artifact ${fmt(a)} | source ${fmt(results.source![cmd]!)} | npx ${fmt(results.npx![cmd]!)} | npx/artifact ${(results.npx![cmd]!.median / a.median).toFixed(2)}x`);
}
if (values.json) console.log(JSON.stringify({ runs: RUNS, results, installedBytes }, null, 2));
