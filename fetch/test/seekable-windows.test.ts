// Checkpoint windows travel apart from seekable indexes: loaded once on first need, checked, else derived from the data before the span.
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decodeSeekableIndex, inflateChunk, SeekableIndexBuilder } from "@shoal/blockindex";
import { writeTar } from "@shoal/testkit";
import { loadWindow, type RemoteLayer } from "../src/index.ts";

/** Text of pseudo-random words (an LCG: the same every run), compressible but not too much. */
function words(bytes: number): Buffer {
  const out: string[] = [];
  let x = 12345;
  let n = 0;
  while (n < bytes) {
    x = (x * 1103515245 + 12345) >>> 0;
    const w = (x >>> 8).toString(36);
    out.push(w);
    n += w.length + 1;
  }
  return Buffer.from(out.join(" ")).subarray(0, bytes);
}

/** A seekable layer over a blob of text wrapped in one tar entry. */
function layer(): { remote: RemoteLayer; tar: Buffer; blob: Buffer; pack: Buffer } {
  const body = words(600_000);
  const tar = Buffer.from(writeTar([{ path: "f", type: "file", data: body }], { defaultFormat: "ustar" }).tar);
  const blob = gzipSync(tar);
  const b = new SeekableIndexBuilder({ spacing: 64 << 10 });
  b.push(blob);
  const built = b.end();
  const { index } = decodeSeekableIndex(built.bytes);
  return { remote: { digest: built.blobDigest, registry: "r", repository: "x", index, kind: "seekable" }, tar, blob, pack: built.pack };
}

describe("loadWindow", () => {
  it("loads a window once from the layer's loader, checked against the index, before the span inflates", async () => {
    const { remote, tar, blob, pack } = layer();
    let loads = 0;
    remote.windows = async (ref) => {
      loads++;
      return pack.subarray(ref.offset, ref.offset + ref.packed);
    };
    const i = [...Array(remote.index.chunkCount).keys()].find((k) => remote.index.chunk(k).resume!.windowRef)!;
    const c = remote.index.chunk(i);
    const never = () => Promise.reject(new Error("not derived"));
    await Promise.all([loadWindow(remote, c, never), loadWindow(remote, c, never)]);
    expect(loads).toBe(1);
    const raw = await inflateChunk(c, blob.subarray(c.offset, c.offset + c.length));
    expect(raw.equals(tar.subarray(c.uncompressedOffset, c.uncompressedOffset + c.uncompressedLength))).toBe(true);
  });

  it("derives a window from the data before the span when the loader fails or lies, and refuses data that is not it", async () => {
    const { remote, tar, pack } = layer();
    remote.windows = async (ref) => Buffer.alloc(ref.packed, 0x41); // a lying loader
    const i = [...Array(remote.index.chunkCount).keys()].find((k) => remote.index.chunk(k).resume!.windowRef)!;
    const c = remote.index.chunk(i);
    const readBefore = async (offset: number, length: number) => tar.subarray(offset, offset + length);
    await loadWindow(remote, c, readBefore);
    expect(Buffer.from(c.resume!.window!).equals(tar.subarray(c.uncompressedOffset - c.resume!.window!.length, c.uncompressedOffset))).toBe(true);
    const j = [...Array(remote.index.chunkCount).keys()].find((k) => k > i && remote.index.chunk(k).resume!.windowRef)!;
    const d = remote.index.chunk(j);
    delete remote.windows;
    await expect(loadWindow(remote, d, async (_o, length) => Buffer.alloc(length, 1))).rejects.toThrow(/not the data before it/);
    expect(d.resume!.window).toBeUndefined();
    expect(pack.length).toBeGreaterThan(0);
  });
});
