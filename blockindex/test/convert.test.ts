import { DigestMismatchError, InvalidArgumentError } from "@shoal/base";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertLayer, decodeFooter, decodeIndexMembers, FOOTER_SIZE, LayerReader, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_LAYER_ZSTD, UnsupportedMediaTypeError, type Chunk, type LayerChunks, type ConvertInit } from "@shoal/blockindex";
import { gnuTar, gz, pieces, prng, tempDir } from "./helpers.ts";

const CHUNK = 64 * 1024;
const sha = (b: Uint8Array) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function convert(blob: Buffer, mediaType = OCI_LAYER_GZIP, init: ConvertInit = {}) {
  const out: Buffer[] = [];
  const result = await convertLayer(pieces(blob), mediaType, (b) => { out.push(b); }, { chunkSize: CHUNK, layer: "test", ...init });
  return { result, bytes: Buffer.concat(out) };
}

function memorySource(blob: Buffer, tamper?: (c: Chunk, b: Buffer) => Buffer): LayerChunks & { fetched: number[] } {
  const fetched: number[] = [];
  return {
    fetched,
    async fetchChunk(c) {
      fetched.push(c.index);
      const b = Buffer.from(blob.subarray(c.offset, c.offset + c.length));
      return tamper ? tamper(c, b) : b;
    },
  };
}

describe("convertLayer", () => {
  const t = tempDir();
  let tar: Buffer;
  const files = new Map<string, Buffer>();
  beforeAll(() => {
    const rnd = prng(42);
    const root = join(t.dir, "root");
    mkdirSync(join(root, "dir/sub"), { recursive: true });
    const add = (p: string, b: Buffer) => { writeFileSync(join(root, p), b); files.set(p, b); };
    add("a.txt", Buffer.from("hello world\n"));
    add("dir/random.bin", rnd(300_000));
    add("dir/zeros.bin", Buffer.alloc(200_000));
    add("dir/sub/exact", rnd(CHUNK));
    add("empty", Buffer.alloc(0));
    for (let i = 0; i < 200; i++) add(`dir/sub/f${i}`, rnd(i * 37));
    tar = gnuTar(root, "pax", ["--numeric-owner", "--owner=0", "--group=0", "--mtime=@1700000000"]);
  });
  afterAll(() => t.cleanup());

  it("keeps the uncompressed stream byte for byte, as valid gzip for gzip(1)", async () => {
    const { result, bytes } = await convert(gz(tar));
    expect(result.diffID).toBe(sha(tar));
    expect(result.uncompressedSize).toBe(tar.length);
    expect(result.digest).toBe(sha(bytes));
    expect(result.size).toBe(bytes.length);
    expect(gunzipSync(bytes)).toEqual(tar);
    // the real gzip tool, which checks every member's CRC
    expect(execFileSync("gzip", ["-dc"], { input: bytes, maxBuffer: 1 << 30 })).toEqual(tar);
    expect(result.index.chunkCount).toBe(Math.ceil(tar.length / CHUNK));
  });

  it("locates the index from the footer and from the annotations alone", async () => {
    const { result, bytes } = await convert(gz(tar));
    const loc = decodeFooter(bytes.subarray(bytes.length - FOOTER_SIZE), bytes.length);
    expect(loc).toEqual(result.indexLocation);
    const region = bytes.subarray(loc.offset, loc.offset + loc.size);
    const index = decodeIndexMembers(region, loc, { expectedDigest: result.indexDigest });
    expect(index.entries).toEqual(result.index.entries);
    expect(index.encode()).toEqual(result.index.encode());
    const bad = Buffer.from(region);
    bad[bad.length - 20] = bad[bad.length - 20]! ^ 1;
    expect(() => decodeIndexMembers(bad, loc, { expectedDigest: result.indexDigest })).toThrow(/digest mismatch/);
  });

  it("is deterministic whatever the concurrency and input piece sizes", async () => {
    const blob = gz(tar);
    const a = await convert(blob, OCI_LAYER_GZIP, { concurrency: 1 });
    const b = await convert(blob, OCI_LAYER_GZIP, { concurrency: 8 });
    expect(a.result.digest).toBe(b.result.digest);
    const c = await convert(tar, OCI_LAYER_TAR);
    expect(c.result.digest).toBe(a.result.digest);
  });

  it("reads every file through a LayerChunks, fetching only the chunks that hold it", async () => {
    const { result, bytes } = await convert(gz(tar));
    const source = memorySource(bytes);
    const reader = new LayerReader({ index: result.index, source });
    for (const [path, content] of files) {
      const e = result.index.find(path)!;
      expect(e, path).toBeDefined();
      expect(await reader.read(e, 0, e.size)).toEqual(content);
    }
    const big = result.index.find("dir/random.bin")!;
    source.fetched.length = 0;
    expect(await reader.read(big, 100_000, 10)).toEqual(files.get("dir/random.bin")!.subarray(100_000, 100_010));
    expect(source.fetched).toHaveLength(1);
    expect(await reader.read(big, 299_995, 100)).toEqual(files.get("dir/random.bin")!.subarray(299_995));
    expect(await reader.read(big, 400_000, 100)).toHaveLength(0);
  });

  it("refuses chunks that fail their digest", async () => {
    const { result, bytes } = await convert(gz(tar));
    const reader = new LayerReader({ index: result.index, source: memorySource(bytes, (_c, b) => { b[b.length >> 1] = b[b.length >> 1]! ^ 0xff; return b; }) });
    const e = result.index.find("a.txt")!;
    await expect(reader.read(e, 0, 5)).rejects.toBeInstanceOf(DigestMismatchError);
  });

  it("rejects zstd, unknown media types and bad chunk sizes", async () => {
    await expect(convert(gz(tar), OCI_LAYER_ZSTD)).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    await expect(convert(gz(tar), "application/json")).rejects.toBeInstanceOf(UnsupportedMediaTypeError);
    await expect(convert(gz(tar), OCI_LAYER_GZIP, { chunkSize: 100 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("names the layer and offset of a truncated gzip stream", async () => {
    const blob = gz(tar);
    const err = await convert(blob.subarray(0, blob.length >> 1)).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "SHOAL_ERR_GZIP_CORRUPT" });
    expect((err as Error).message).toMatch(/layer test, blob offset \d+/);
  });

  it("ends in a typed error, never a hang, for gzip corrupted anywhere near its start", async () => {
    const blob = gz(tar);
    for (const at of [0, 1, 3, 10, 12, 20, 40, 100, 1000]) {
      const bad = Buffer.from(blob);
      bad[at] = bad[at]! ^ 0xff;
      const err = await convert(bad).then(() => undefined, (e: unknown) => e);
      // a flip may leave valid deflate that inflates to a tar the parser refuses, or to the same bytes (then no error)
      if (err !== undefined) expect([at, (err as { code?: string }).code]).toEqual([at, expect.stringMatching(/^SHOAL_ERR_(GZIP_CORRUPT|TAR_[A-Z_]+)$/)]);
    }
  });

  it("rejects with the source's own error when the source fails mid-stream (as a digest check does)", async () => {
    const blob = gz(tar);
    async function* failing() {
      yield blob.subarray(0, 50_000);
      throw new DigestMismatchError("blob sha256:abc", "sha256:abc", "sha256:def");
    }
    for (const mediaType of [OCI_LAYER_GZIP, OCI_LAYER_TAR]) {
      const src = mediaType === OCI_LAYER_GZIP ? failing() : (async function* () { yield tar.subarray(0, 50_000); throw new DigestMismatchError("blob sha256:abc", "sha256:abc", "sha256:def"); })();
      const err = await convertLayer(src, mediaType, () => undefined, { chunkSize: CHUNK }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
    }
  });

  it("reproduces the bytes GNU tar extracts", async () => {
    const { result, bytes } = await convert(gz(tar));
    const reader = new LayerReader({ index: result.index, source: memorySource(bytes) });
    const out = join(t.dir, "x");
    mkdirSync(out);
    execFileSync("tar", ["-xzf", "-", "-C", out], { input: bytes });
    for (const e of result.index.entries.filter((x) => x.type === "file")) {
      expect(await reader.read(e, 0, e.size)).toEqual(readFileSync(join(out, e.path)));
    }
  });
});
