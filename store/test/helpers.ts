import { afterAll, beforeAll } from "vitest";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { Level } from "level";
import { ChunkStore, type ChunkDb, type ChunkStoreInit, type ChunkStoreMetrics } from "../src/index.ts";

/** A chunk as the fetcher would hand it to the store. */
export interface TestChunk {
  index: number;
  digest: string;
  compressed: Buffer;
  raw: Buffer;
}

/** Deterministic pseudo-random bytes for `seed` (xorshift32). */
export function prng(seed: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Digest of a chunk's compressed bytes, as the layer index records it. */
export function digestOf(compressed: Uint8Array): string {
  return `sha256:${createHash("sha256").update(compressed).digest("hex")}`;
}

/**
 * Chunk `index`: raw bytes are a deterministic mix of text and noise (so
 * gzip does some work), 1..32 KiB unless `rawSize` is given.
 */
export function makeChunk(index: number, rawSize?: number): TestChunk {
  const size = rawSize ?? 1 + ((index * 7919) % (32 * 1024));
  const noise = prng(index, size);
  const text = Buffer.from(`chunk ${index} `.repeat(Math.ceil(size / 8)));
  const raw = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) raw[i] = i % 64 < 32 ? (text[i] as number) : (noise[i] as number);
  const compressed = gzipSync(raw);
  return { index, digest: digestOf(compressed), compressed, raw };
}

/** Chunk `index` of incompressible bytes: every such chunk of one `rawSize` has the same compressed size. */
export function makeRandomChunk(index: number, rawSize: number): TestChunk {
  const raw = prng(index + 1_000_000, rawSize);
  const compressed = gzipSync(raw, { level: 0 });
  return { index, digest: digestOf(compressed), compressed, raw };
}

/** Bytes a chunk occupies in the store. */
export function chunkBytes(c: TestChunk): number {
  return c.compressed.length + c.raw.length;
}

/** A fresh temp directory; remove it with `rm(dir, { recursive: true, force: true })`. */
export function tempDir(prefix = "shoal-store-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Remove a temp directory. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}

/** Every file under `root/chunks`, relative, sorted. */
export async function listChunkFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const top = path.join(root, "chunks");
  for (const shard of await readdir(top, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue;
    for (const f of await readdir(path.join(top, shard.name))) out.push(`${shard.name}/${f}`);
  }
  return out.sort();
}

/** The file names a store holding exactly `digests` must have. */
export function expectedFiles(digests: Iterable<string>): string[] {
  const out: string[] = [];
  for (const d of digests) {
    const hex = d.slice("sha256:".length);
    out.push(`${hex.slice(0, 2)}/${hex}.z`, `${hex.slice(0, 2)}/${hex}.raw`);
  }
  return out.sort();
}

/** Counters that remember their totals. */
export function countingMetrics(): Required<{ [K in keyof ChunkStoreMetrics]: { value: number; inc(n?: number): void } }> {
  const c = () => ({
    value: 0,
    inc(n = 1) {
      this.value += n;
    },
  });
  return { hits: c(), misses: c(), evictions: c(), evictedBytes: c(), storedBytes: c(), corrupt: c() };
}

/** A store and its own LevelDB (in `dir/db`), opened together, closed together. */
export interface OpenedStore {
  store: ChunkStore;
  db: Level<string, string>;
  close(): Promise<void>;
}

/** Open a LevelDB at `dbPath` and a store over a sublevel of it. */
export async function openStore(
  dbPath: string,
  init: ChunkStoreInit,
  extra: { metrics?: ChunkStoreMetrics; wrapDb?: (db: ChunkDb) => ChunkDb } = {},
): Promise<OpenedStore> {
  const db = new Level<string, string>(dbPath);
  await db.open();
  const sub: ChunkDb = db.sublevel("chunks");
  const store = await ChunkStore.open({ db: extra.wrapDb ? extra.wrapDb(sub) : sub, metrics: extra.metrics }, init);
  return {
    store,
    db,
    async close() {
      await store.close();
      await db.close();
    },
  };
}

/**
 * A temp dir for the calling test file, made before its tests and removed
 * after them (registers `beforeAll`/`afterAll`); `paths()` names a fresh
 * store root and db path inside it for each test.
 */
export function suiteDir(): { paths(): { root: string; dbPath: string }; dir(): string } {
  let dir: string | undefined;
  let n = 0;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    if (dir) await removeDir(dir);
  });
  const here = (): string => {
    if (!dir) throw new Error("suiteDir: used outside a test");
    return dir;
  };
  return {
    dir: here,
    paths() {
      n++;
      return { root: path.join(here(), `root${n}`), dbPath: path.join(here(), `db${n}`) };
    },
  };
}

