// Seekable indexes of ordinary gzip layers: built from one pass, every span inflates on its own to the bytes it claims.
import { edgeCaseImage, writeTar } from "@shoal/testkit";
import { createHash } from "node:crypto";
import { constants, createGzip, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { prng } from "./helpers.ts";
import { attachWindows, decodeSeekableIndex, inflateChunk, readSeekableBlob, SeekableIndexBuilder, TarParser, type LayerIndex, type TarEntry } from "../src/index.ts";

/** A tar stream with text, zeros and random runs in its files, so every block kind appears. */
function mixedTar(files: number, seed: number): Buffer {
  const randomBytes = prng(seed);
  const entries = Array.from({ length: files }, (_, i) => {
    const len = 1000 + ((i * 7919 + seed) % 60_000);
    const data = i % 3 === 0 ? randomBytes(len) : i % 3 === 1 ? Buffer.from(`file ${i} line\n`.repeat(len / 14 + 1)).subarray(0, len) : Buffer.alloc(len);
    return { path: `f/${i}`, type: "file" as const, data };
  });
  return Buffer.from(writeTar(entries, { defaultFormat: "ustar" }).tar);
}

function entriesOf(tar: Uint8Array): TarEntry[] {
  const out: TarEntry[] = [];
  const p = new TarParser((e) => out.push(e));
  p.push(tar);
  p.end();
  return out;
}

function build(blob: Uint8Array, spacing: number, piece = 100_000) {
  const b = new SeekableIndexBuilder({ spacing });
  for (let i = 0; i < blob.length; i += piece) b.push(blob.subarray(i, i + piece));
  return b.end();
}

/** Every span of `index`, cut from `blob`, matches its digest and inflates to its part of `tar`. */
async function expectSpansRead(index: LayerIndex, blob: Uint8Array, tar: Uint8Array): Promise<void> {
  expect(index.uncompressedSize).toBe(tar.length);
  let end = 0;
  for (let i = 0; i < index.chunkCount; i++) {
    const c = index.chunk(i);
    // the spans tile the blob: each starts where the one before ended, or in its last byte
    expect(c.offset === end || (i > 0 && c.offset === end - 1), `span ${i} starts at ${c.offset}, the one before ended at ${end}`).toBe(true);
    end = c.offset + c.length;
    const bytes = blob.subarray(c.offset, c.offset + c.length);
    expect(createHash("sha256").update(bytes).digest().equals(c.digest), `digest of span ${i}`).toBe(true);
    const raw = await inflateChunk(c, bytes);
    expect(Buffer.compare(raw, tar.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedLength)), `span ${i} of ${index.chunkCount}`).toBe(0);
  }
  expect(end).toBe(blob.length);
}

async function gzipWithSyncFlushes(data: Buffer, every: number): Promise<Buffer> {
  const gz = createGzip({ level: 6 });
  const out: Buffer[] = [];
  gz.on("data", (d: Buffer) => out.push(d));
  for (let i = 0; i < data.length; i += every) {
    gz.write(data.subarray(i, i + every));
    await new Promise<void>((resolve) => gz.flush(constants.Z_SYNC_FLUSH, () => resolve()));
  }
  const ended = new Promise<void>((resolve) => gz.on("end", () => resolve()));
  gz.end();
  await ended;
  return Buffer.concat(out);
}

describe("SeekableIndexBuilder", () => {
  const edge = edgeCaseImage({ smallFileCount: 400 });

  it.each(edge.layers.map((l) => [l.name, l.tar] as const))("indexes the edge-case layer %s: the entries a tar parser sees, spans that inflate alone", async (_name, tar) => {
    for (const level of [1, 6, 9]) {
      const blob = gzipSync(tar, { level });
      const built = build(blob, 64 << 10, 3000);
      expect(built.blobDigest).toBe(`sha256:${createHash("sha256").update(blob).digest("hex")}`);
      expect(built.index.entries).toEqual(entriesOf(tar));
      await expectSpansRead(built.index, blob, tar);
    }
  });

  it("cuts spans at the spacing, ends mid-byte spans at stored blocks, and keeps stored data as spans of its own", async () => {
    const tar = mixedTar(300, 1);
    const blob = gzipSync(tar, { level: 6 });
    const { index } = build(blob, 64 << 10);
    expect(index.chunkCount).toBeGreaterThan(tar.length / (256 << 10));
    const kinds = Array.from({ length: index.chunkCount }, (_, i) => index.chunk(i).resume!);
    expect(kinds.some((k) => k.stored)).toBe(true);
    expect(kinds.some((k) => k.bit !== 0)).toBe(true);
    await expectSpansRead(index, blob, tar);
  });

  it("reads streams with sync flushes (empty stored blocks, as pigz writes), level 0, and many members", async () => {
    const tar = mixedTar(120, 2);
    const flushed = await gzipWithSyncFlushes(tar, 50_000);
    await expectSpansRead(build(flushed, 64 << 10).index, flushed, tar);
    const stored = gzipSync(tar, { level: 0 });
    await expectSpansRead(build(stored, 64 << 10).index, stored, tar);
    const members = Buffer.concat([gzipSync(tar.subarray(0, 300_001)), gzipSync(Buffer.alloc(0)), gzipSync(tar.subarray(300_001))]);
    const { index } = build(members, 1 << 20);
    expect(index.chunkCount).toBeGreaterThanOrEqual(2);
    await expectSpansRead(index, members, tar);
  });

  it("encodes to an index and a window pack that decode to the same spans and entries, bound to the blob", async () => {
    const tar = mixedTar(200, 3);
    const blob = gzipSync(tar);
    const built = build(blob, 128 << 10);
    const back = decodeSeekableIndex(built.bytes);
    // the diffID: sha256 of the uncompressed tar, what an image config lists
    const diffId = `sha256:${createHash("sha256").update(tar).digest("hex")}`;
    expect(built.diffId).toBe(diffId);
    expect(back.blob).toEqual({ digest: built.blobDigest, size: blob.length, diffId });
    expect(readSeekableBlob(built.bytes)).toEqual(back.blob);
    expect(back.packBytes).toBe(built.pack.length);
    expect(back.index.entries).toEqual(built.index.entries);
    expect(back.index.chunkCount).toBe(built.index.chunkCount);
    // decoded, the windows are only referenced; spans that need one do not inflate until it is loaded
    const needy = [...Array(back.index.chunkCount).keys()].find((i) => back.index.chunk(i).resume!.windowRef)!;
    const c0 = back.index.chunk(needy);
    await expect(inflateChunk(c0, blob.subarray(c0.offset, c0.offset + c0.length))).rejects.toThrow(/window is not loaded/);
    attachWindows(back.index, built.pack);
    const plain = (c: ReturnType<LayerIndex["chunk"]>) => ({ ...c, resume: { ...c.resume!, windowRef: undefined, window: Buffer.from(c.resume!.window!).toString("hex") } });
    for (let i = 0; i < back.index.chunkCount; i++) expect(plain(back.index.chunk(i))).toEqual(plain(built.index.chunk(i)));
    expect(back.index.chunksForRange(tar.length - 1, 1)!.last).toBe(back.index.chunkCount - 1);
    await expectSpansRead(back.index, blob, tar);
    // a window pack that is not the index's is refused
    const other = decodeSeekableIndex(built.bytes);
    const bad = Buffer.from(built.pack);
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
    expect(() => attachWindows(other.index, bad)).toThrow(/window/);
    // every truncation is refused with the index error, never a crash
    for (const cut of [0, 3, 10, 50, built.bytes.length - 1]) expect(() => decodeSeekableIndex(built.bytes.subarray(0, cut))).toThrow(/seekable index/);
  });

  it("indexes an uncompressed tar layer as stored spans, and refuses zstd naming what it reads", async () => {
    const tar = mixedTar(100, 5);
    const { index, diffId, blobDigest } = build(tar, 1 << 20, 7777);
    expect(diffId).toBe(blobDigest); // uncompressed: the blob is its own tar stream
    expect(index.entries).toEqual(entriesOf(tar));
    expect(index.chunkCount).toBe(Math.ceil(tar.length / (1 << 20)));
    await expectSpansRead(index, tar, tar);
    expect(() => build(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]), 1 << 20)).toThrow(/zstd.*gzip and uncompressed tar/);
  });

  it("refuses what is not a gzip tar stream, and a wrong window is caught when the span inflates", async () => {
    expect(() => build(Buffer.from("not gzip at all, just text"), 1 << 20)).toThrow(/tar/);
    expect(() => build(Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.alloc(100, 7)]), 1 << 20)).toThrow(/gzip/);
    const tar = mixedTar(50, 4);
    const blob = gzipSync(tar);
    expect(() => build(blob.subarray(0, blob.length - 20), 1 << 20)).toThrow(/truncated|corrupt/);
    const { index } = build(blob, 64 << 10);
    let caught = 0;
    for (let i = 0; i < index.chunkCount; i++) {
      const c = index.chunk(i);
      if (!c.resume!.window?.length) continue;
      const forged = { ...c, resume: { ...c.resume!, window: Buffer.alloc(c.resume!.window.length, 0x41) } };
      const raw = await inflateChunk(forged, blob.subarray(c.offset, c.offset + c.length)).catch(() => undefined);
      if (raw === undefined || !raw.equals(tar.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedLength))) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });
});
