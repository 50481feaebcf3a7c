/** Shared setup of the supernode tests: a converted image in a real registry, supernodes in-process. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeIndexMembers, parseLazyAnnotations, type LayerIndex } from "@shoal/blockindex";
import { parseReference, RegistryClient } from "@shoal/oci";
import { largeImage, pushLayout, runShoalOk, startRegistry, writeImageLayout, type RunningRegistry } from "@shoal/testkit";
import { pino } from "pino";
import { createSupernode, type Supernode, type SupernodeInit } from "../src/index.ts";

/** Run `shoal convert --plain-http SRC DST`; rejects with stderr on failure. */
export async function convert(src: string, dst: string, cacheHome: string, chunkSize?: number): Promise<void> {
  await runShoalOk(["convert", "--plain-http", ...(chunkSize ? ["--chunk-size", String(chunkSize)] : []), src, dst], { env: { XDG_CACHE_HOME: cacheHome } });
}

/** One converted layer with its whole blob and decoded index. */
export interface TestLayer {
  digest: string;
  size: number;
  blob: Buffer;
  index: LayerIndex;
}

/** A converted image pushed as `<registry>/<repository>:lazy` (original at `:v1`). */
export interface TestImage {
  registry: string;
  repository: string;
  ref: string;
  original: string;
  originalLayers: string[];
  layers: TestLayer[];
  /** Sum of the lazy layers' sizes. */
  bytes: number;
}

/** Build, push and convert an image of about `totalBytes` of incompressible data. */
export async function prepareImage(registry: RunningRegistry, work: string, repository: string, totalBytes: number, chunkSize?: number): Promise<TestImage> {
  const img = largeImage({ totalBytes, maxFileSize: 1024 * 1024 });
  const layout = await writeImageLayout(join(work, `layout-${repository.replace(/\//g, "_")}`), img.layers, { tag: "v1" });
  const original = `${registry.host}/${repository}:v1`;
  const ref = `${registry.host}/${repository}:lazy`;
  await pushLayout(layout.dir, "v1", original);
  await convert(original, ref, join(work, "cache"), chunkSize);
  const client = new RegistryClient({}, { registry: registry.host, plainHttp: true });
  try {
    const m = (await client.resolveImage(parseReference(ref))).manifest;
    const layers: TestLayer[] = [];
    for (const d of m.layers) {
      const info = parseLazyAnnotations(d.annotations, d.digest);
      if (!info) throw new Error("not lazy");
      const blob = Buffer.from(await client.getBlob(repository, d.digest, { maxSize: 1 << 30 }));
      const index = decodeIndexMembers(blob.subarray(info.location.offset, info.location.offset + info.location.size), info.location, { expectedDigest: info.indexDigest });
      layers.push({ digest: d.digest, size: d.size, blob, index });
    }
    return { registry: registry.host, repository, ref, original, originalLayers: layout.layers.map((l) => l.digest), layers, bytes: layers.reduce((s, l) => s + l.size, 0) };
  } finally {
    await client.close();
  }
}

/** The compressed bytes of chunks first..last of a layer, straight from the blob. */
export function blobChunks(layer: TestLayer, first: number, last: number): Buffer {
  const a = layer.index.chunk(first);
  const b = layer.index.chunk(last);
  return layer.blob.subarray(a.offset, b.offset + b.length);
}

/** Temp dirs and supernodes to clean up after a test file, whatever happens. */
export class Cleanup {
  readonly #fns: (() => Promise<unknown>)[] = [];

  add(fn: () => Promise<unknown>): void {
    this.#fns.push(fn);
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix));
    this.add(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async supernode(init: Partial<SupernodeInit> & { root: string }): Promise<Supernode> {
    const logger = pino({ level: process.env.SHOAL_TEST_LOG ?? "silent" });
    const sn = await createSupernode({ listen: { host: "127.0.0.1", port: 0 }, plainHttp: true, ...init }, logger);
    this.add(() => sn.close());
    return sn;
  }

  async run(): Promise<void> {
    for (const fn of this.#fns.reverse()) await fn().catch(() => undefined);
    this.#fns.length = 0;
  }
}

/** GET the chunks first..last of a layer through a supernode. */
export async function fetchChunks(base: string, image: { registry: string; repository: string }, layer: string, first: number, last: number): Promise<Response> {
  return fetch(`${base}/v1/chunks/${image.registry}/${image.repository}/${layer}?first=${first}&last=${last}`);
}

/**
 * Start the Debian registry and push and convert an image of about
 * `totalBytes` into `repository` (see `prepareImage`); both are cleaned up by
 * `cleanup`, which also runs at once if the setup fails.
 */
export async function registryWithImage(cleanup: Cleanup, repository: string, totalBytes: number, chunkSize?: number): Promise<{ registry: RunningRegistry; image: TestImage }> {
  try {
    const registry = await startRegistry();
    cleanup.add(() => registry.stop());
    const work = await cleanup.tempDir(`shoal-sn-${repository.replace(/\//g, "-")}-`);
    return { registry, image: await prepareImage(registry, work, repository, totalBytes, chunkSize) };
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}

