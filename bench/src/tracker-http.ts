// A real supernode's tracker at fleet scale (issue 29): `shoal supernode`
// started on loopback with a swarm key, then N hosts (10,000 by default)
// each announce one layer with a chunk bitmap (669 chunks, half held),
// sealed with an identity of their own as agents do, twice (a streaming
// host announces every second: the second round is what it costs then);
// then questions for
// the layer's holders, as every host of a streaming fleet asks once a
// second. Prints the supernode's CPU per question and per announce (from
// /proc) and the questions' latency. --cli runs another checkout's shoal
// (a before and after in one sitting).
//   node bench/src/tracker-http.ts [--hosts 10000] [--questions 1000] [--cli PATH/cli/src/main.ts]
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatSwarmKey, generateSwarmKey } from "@shoal/p2p";
import { encodeChunkBitmap } from "@shoal/swarm";
import { sealForTest, testPeerIdentity } from "@shoal/swarm/testsuite";
import { freePort } from "@shoal/testkit";
import { DEFAULT_CLI, shoalCli } from "./shoal-cli.ts";
import { installExitHook, liveWorkDirs, removeWorkDir, stopProcess } from "./leftovers.ts";
import { cpuSecondsOf } from "./proc-cpu.ts";

const { values } = parseArgs({ options: { hosts: { type: "string", default: "10000" }, questions: { type: "string", default: "1000" }, cli: { type: "string", default: DEFAULT_CLI } } });
const hosts = Number(values.hosts);
const questions = Number(values.questions);
const LAYER = `sha256:${"5".repeat(64)}`;

/** Run `jobs` `width` at a time. */
const pool = async (count: number, width: number, job: (k: number) => Promise<void>) => {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await job(next++);
  }));
};

installExitHook();
const work = await mkdtemp(join(tmpdir(), "shoal-bench-tracker-"));
liveWorkDirs.add(work);
const key = generateSwarmKey();
await writeFile(join(work, "swarm.key"), formatSwarmKey(key), { mode: 0o600 });
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const { daemon } = shoalCli(values.cli);
const sn = await daemon([
  "supernode", "--root", join(work, "sn"), "--listen", `127.0.0.1:${port}`, "--swarm-key", join(work, "swarm.key"),
  "--p2p-listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "warn",
], { logFile: join(work, "sn.log"), ready: { tcp: { host: "127.0.0.1", port } }, timeoutMs: 60_000, ...(process.env.SNPROF ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${process.env.SNPROF}`] } : {}) });
try {
  const pid = sn.child.pid!;
  const bitmaps = Array.from({ length: 64 }, () => encodeChunkBitmap(669, () => Math.random() < 0.5));
  const who = Array.from({ length: hosts }, () => testPeerIdentity());
  /** Every host announces once, `width` at a time; the supernode's CPU seconds it took. */
  const round = async (): Promise<number> => {
    const sealed = await Promise.all(who.map((w, k) => sealForTest("announce", { peerId: w.peerId, addrs: [`/ip4/10.0.${k >> 8}.${k & 255}/tcp/7071`], layers: [LAYER], chunks: { [LAYER]: bitmaps[(k + Date.now()) % 64]! } }, w, key.psk)));
    const before = cpuSecondsOf(pid);
    await pool(hosts, 16, async (k) => {
      const r = await fetch(`${url}/v1/announce`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(sealed[k]) });
      if (r.status !== 200) throw new Error(`announce ${k}: ${r.status} ${await r.text()}`);
    });
    return cpuSecondsOf(pid) - before;
  };
  const first = await round();
  // a streaming fleet announces again every second: what each announce costs from the second on
  const again = await round();
  const cpu1 = cpuSecondsOf(pid);
  const latencies: number[] = [];
  let listed = 0;
  await pool(questions, 4, async () => {
    const t = performance.now();
    const r = await fetch(`${url}/v1/peers?layer=${LAYER}`);
    listed = ((await r.json()) as unknown[]).length;
    latencies.push(performance.now() - t);
  });
  const cpu2 = cpuSecondsOf(pid);
  latencies.sort((a, b) => a - b);
  console.log(`${hosts} hosts announced: ${((first * 1e6) / hosts).toFixed(0)} µs of supernode CPU per first announce, ${((again * 1e6) / hosts).toFixed(0)} µs per announce after`);
  console.log(`${questions} questions (4 at once), ${listed} holders each answer: ${(((cpu2 - cpu1) * 1e6) / questions).toFixed(0)} µs of supernode CPU per question, latency median ${latencies[Math.floor(questions / 2)]!.toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`);
} finally {
  await stopProcess(sn.child, 10_000);
  await removeWorkDir(work, (l) => console.error(l));
}
