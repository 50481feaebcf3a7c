// Ordinary (unconverted) images read lazily through seekable indexes that a supernode builds, in one run:
//   npx node bench/src/seekable/main.ts [--rate MBIT] [--spacing BYTES] [--json]
// 1. Index building, per layer of the realistic image: SeekableIndexBuilder over the blob against `gzip -dc`
//    of the same blob (same run, ratio), and the index's size beside the layer's (span table; entries apart).
// 2. Time to first work (python imports + nginx answering), registry in a network namespace capped at --rate:
//    full pull (skopeo copy + umoci unpack), the image converted (shoal convert, then mount), and the image
//    unconverted through one supernode on loopback: a first host (the supernode builds the indexes on demand)
//    and a later fresh host (indexes and blocks cached at the supernode).
// Needs root (network namespace, mounts), debootstrap, skopeo, umoci, docker-registry.
import { spawn, type ChildProcess } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { attachWindows, decodeSeekableIndex, encodeSeekableIndex, LayerIndex, SeekableIndexBuilder } from "@shoal/blockindex";
import { createNetns, freePort, pushLayout, run, runFirstWork, startNetnsRegistry, umociUnpack, unmountAllUnder, type Netns, type NetnsRegistry } from "@shoal/testkit";
import { installExitHook, liveMountRoots, liveWorkDirs, stopProcess } from "../leftovers.ts";
import { realisticImage, withoutProxies } from "../setup.ts";
import { layerBytes, shoalCli } from "../shoal-cli.ts";

const { values } = parseArgs({ options: { rate: { type: "string", default: "100" }, spacing: { type: "string" }, json: { type: "boolean", default: false } } });
const rateMbit = Number(values.rate);
if (!(rateMbit > 0)) throw new Error("--rate must be a positive number of Mbit/s");
const spacing = values.spacing ? Number(values.spacing) : undefined;
const log = (s: string) => console.error(s);
const { cli, cliOk, daemon } = shoalCli();
const sec = (t0: number) => (performance.now() - t0) / 1000;
const MiB = 2 ** 20;

/** Seconds to run `fn`, the fastest of `n` runs (the file is in the page cache after the first). */
async function fastest(n: number, fn: () => Promise<void>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, sec(t0));
  }
  return best;
}

/** Window packs by layer, from the last build. */
const packs = new Map<string, Buffer>();

async function buildIndex(path: string, digest: string): Promise<Buffer> {
  const b = new SeekableIndexBuilder(spacing !== undefined ? { spacing } : {});
  for await (const piece of createReadStream(path, { highWaterMark: 1 << 20 })) b.push(piece as Buffer);
  const built = b.end();
  packs.set(digest, built.pack);
  return built.bytes;
}

function gunzipToNull(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn("gzip", ["-dc", path], { stdio: ["ignore", "ignore", "inherit"] });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`gzip -dc exited ${code}`))));
  });
}

installExitHook();
const restoreProxies = withoutProxies();
const image = await realisticImage(log);
const result: Record<string, unknown> = { rateMbit, image: { compressedBytes: image.compressedBytes, uncompressedBytes: image.uncompressedBytes, version: image.version } };

// 1. index building
const layers = [];
for (const l of image.layers) {
  const path = join(image.layoutDir, "blobs", "sha256", l.digest.slice("sha256:".length));
  let bytes: Buffer = Buffer.alloc(0);
  const buildSec = await fastest(3, async () => {
    bytes = await buildIndex(path, l.digest);
  });
  const gzipSec = await fastest(3, () => gunzipToNull(path));
  const s = decodeSeekableIndex(bytes);
  const n = s.index.chunkCount;
  const chunks = Array.from({ length: n }, (_, i) => s.index.chunk(i));
  const noEntries = new LayerIndex({
    chunkSize: s.index.chunkSize, uncompressedSize: s.index.uncompressedSize, entries: [],
    chunkLengths: chunks.map((c) => c.length), chunkDigests: chunks.map((c) => c.digest),
    spans: { offsets: chunks.map((c) => c.offset), uncompressedOffsets: chunks.map((c) => c.uncompressedOffset), checkpoints: chunks.map((c) => c.resume!) },
  });
  attachWindows(noEntries, packs.get(l.digest)!);
  const spanTableBytes = encodeSeekableIndex({ blob: s.blob, index: noEntries }).bytes.length;
  layers.push({ digest: l.digest, blobBytes: l.size, buildSec, gzipSec, speedVsGzip: gzipSec / buildSec, indexBytes: bytes.length, packBytes: packs.get(l.digest)!.length, spanTableBytes, spanTableShare: spanTableBytes / l.size, spans: n, entries: s.index.entries.length });
  log(`index of ${l.digest.slice(7, 19)} (${(l.size / MiB).toFixed(1)} MiB): built in ${buildSec.toFixed(2)} s, gzip -dc ${gzipSec.toFixed(2)} s (${(gzipSec / buildSec).toFixed(2)}x), ${n} spans; index ${(bytes.length / 1024).toFixed(0)} KiB, span table ${(spanTableBytes / 1024).toFixed(0)} KiB = ${((100 * spanTableBytes) / l.size).toFixed(2)}% of the layer`);
}
result.indexes = layers;

// 2. time to first work
let ns: Netns | undefined;
let reg: NetnsRegistry | undefined;
const work = await mkdtemp(join(tmpdir(), `shoal-bench-seekable-${process.pid}-`));
liveWorkDirs.add(work);
const procs: Array<{ child: ChildProcess }> = [];
try {
  ns = await createNetns({ rateMbit });
  reg = await startNetnsRegistry(ns);
  const repo = "bench/realistic";
  const src = `${reg.host}/${repo}:v1`;
  log(`registry ${reg.host} at ${rateMbit} Mbit/s; pushing (setup)`);
  await pushLayout(image.layoutDir, image.tag, src);

  // full pull
  reg.resetStats();
  log("full pull: skopeo copy + umoci unpack + first work");
  const t0 = performance.now();
  await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", `docker://${src}`, `oci:${join(work, "oci")}:v1`]);
  const { rootfs } = await umociUnpack(join(work, "oci"), "v1", join(work, "bundle"));
  await runFirstWork(rootfs);
  const fullSec = sec(t0);
  await rm(join(work, "oci"), { recursive: true, force: true });
  await rm(join(work, "bundle"), { recursive: true, force: true });

  log("converting (setup, not measured)");
  await cliOk(["convert", "--plain-http", "--no-cache", src, `${reg.host}/${repo}:lazy`]);
  const lazyBytes = await layerBytes(reg, repo, "lazy");

  const sport = await freePort();
  const supernodeUrl = `http://127.0.0.1:${sport}`;
  const sn = await daemon(["supernode", "--root", join(work, "supernode"), "--listen", `127.0.0.1:${sport}`, "--plain-http", "--registries", reg.host, ...(spacing ? ["--span-spacing", String(spacing)] : []), "--log-level", "info"], {
    logFile: join(work, "supernode.log"), ready: { url: `${supernodeUrl}/v1/health` },
  });
  procs.push(sn);

  const pass = async (name: string, ref: string, extra: string[]) => {
    const root = join(work, `root-${name}`);
    const mnt = join(work, `mnt-${name}`);
    await mkdir(mnt, { recursive: true });
    liveMountRoots.add(root);
    liveMountRoots.add(mnt);
    const agent = await daemon(["agent", "--root", root, "--plain-http", "--prefetch", "off", ...extra], { logFile: join(work, `agent-${name}.log`), ready: { socket: join(root, "agent.sock") } });
    procs.push(agent);
    try {
      await reg!.settle();
      reg!.resetStats();
      log(`${name}: mount + first work`);
      const t = performance.now();
      const out = await cliOk(["mount", "--root", root, ref, mnt]);
      const mountSec = sec(t);
      await runFirstWork(mnt);
      const totalSec = sec(t);
      await reg!.settle();
      const st = reg!.stats();
      const status = JSON.parse(await cliOk(["status", "--root", root, "--json"])) as { sources: Record<string, { bytes: number }> };
      const fetched = Object.values(status.sources).reduce((n, s) => n + s.bytes, 0);
      await cli(["umount", "--root", root, mnt]);
      return { mountSec, totalSec, originBytes: st.blobBytes, originRequests: st.blobRequests, chunkBytesFetched: fetched, shareFetched: fetched / image.compressedBytes, speedup: fullSec / totalSec, mountOutput: out.trim() };
    } finally {
      await stopProcess(agent.child, 15_000);
      await unmountAllUnder(mnt);
      await unmountAllUnder(root);
      liveMountRoots.delete(root);
      liveMountRoots.delete(mnt);
    }
  };
  const converted = await pass("converted", `${reg.host}/${repo}:lazy`, []);
  const first = await pass("unconverted-first", src, ["--supernode", supernodeUrl]);
  const later = await pass("unconverted-later", src, ["--supernode", supernodeUrl]);
  result.firstWork = { fullPullSec: fullSec, lazyImageBytes: lazyBytes, converted, unconvertedFirst: first, unconvertedLater: later };
  const f = (x: { totalSec: number; mountSec: number; speedup: number; chunkBytesFetched: number; originBytes: number }) =>
    `${x.totalSec.toFixed(2)} s (mount ${x.mountSec.toFixed(2)} s) = ${x.speedup.toFixed(2)}x the full pull; ${(x.chunkBytesFetched / MiB).toFixed(1)} MiB fetched by the agent, origin sent ${(x.originBytes / MiB).toFixed(1)} MiB`;
  console.log(`seekable: realistic image ${(image.compressedBytes / MiB).toFixed(1)} MiB compressed, registry at ${rateMbit} Mbit/s`);
  for (const l of layers) console.log(`  index ${l.digest.slice(7, 19)}: build ${l.buildSec.toFixed(2)} s vs gzip -dc ${l.gzipSec.toFixed(2)} s = ${l.speedVsGzip.toFixed(2)}x; span table ${((100 * l.spanTableShare)).toFixed(2)}% of the layer (${l.spans} spans), index with entries ${(l.indexBytes / 1024).toFixed(0)} KiB; window pack beside it ${(l.packBytes / 1024).toFixed(0)} KiB (fetched a window at a time)`);
  console.log(`  full pull (skopeo copy + umoci unpack + first work): ${fullSec.toFixed(2)} s`);
  console.log(`  converted image, shoal mount: ${f(converted)}`);
  console.log(`  unconverted, first host (index built on demand): ${f(first)}`);
  console.log(`  unconverted, later host (index cached): ${f(later)}`);
} finally {
  for (const p of procs.reverse()) await stopProcess(p.child, 15_000);
  await reg?.stop();
  await ns?.destroy();
  await rm(work, { recursive: true, force: true });
  liveWorkDirs.delete(work);
  restoreProxies();
}
if (values.json) console.log(JSON.stringify(result, null, 2));
