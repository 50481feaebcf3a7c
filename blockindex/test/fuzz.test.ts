import { ShoalError } from "@shoal/base";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertLayer, decodeIndexMembers, LayerIndex, OCI_LAYER_GZIP, OCI_LAYER_TAR } from "@shoal/blockindex";
import { gnuTar, gz, prng, tempDir } from "./helpers.ts";

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/** Mutations a hostile or broken registry could produce. */
function mutate(b: Buffer, rnd: (n: number) => Buffer): Buffer {
  const r = rnd(8);
  const kind = r[0]! % 5;
  const at = r.readUInt32LE(1) % Math.max(1, b.length);
  const out = Buffer.from(b);
  switch (kind) {
    case 0: // flip a few bytes
      for (let i = 0; i < 1 + (r[5]! % 8); i++) { const j = (at + i * 131) % out.length; out[j] = out[j]! ^ (1 + (r[6]! % 255)); }
      return out;
    case 1: // truncate
      return out.subarray(0, at);
    case 2: // insert garbage
      return Buffer.concat([out.subarray(0, at), rnd(1 + (r[5]! % 600)), out.subarray(at)]);
    case 3: // overwrite a tar-header-sized span with noise
      rnd(512).copy(out, at);
      return out;
    default: // duplicate a span
      return Buffer.concat([out.subarray(0, at), out.subarray(at, at + 2048), out.subarray(at)]);
  }
}

describe("fuzz: mutated layers give typed errors only", () => {
  const t = tempDir();
  let tar: Buffer;
  beforeAll(() => {
    const rnd = prng(3);
    const root = join(t.dir, "r");
    mkdirSync(join(root, "d".repeat(120)), { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(join(root, `f${i}`), rnd(i * 300));
    writeFileSync(join(root, "d".repeat(120), "n".repeat(150)), "x");
    symlinkSync("t".repeat(200), join(root, "s"));
    tar = gnuTar(root, "pax");
  });
  afterAll(() => t.cleanup());

  const run = async (blob: Buffer, mediaType: string) => {
    try {
      const r = await convertLayer(once(blob), mediaType, () => {}, { chunkSize: 4096, layer: "fuzz" });
      return r;
    } catch (err) {
      if (!(err instanceof ShoalError)) throw new Error(`untyped error: ${String(err)}`, { cause: err });
      expect(err.code).toMatch(/^SHOAL_ERR_/);
      return err;
    }
  };

  it("tar+gzip layers", async () => {
    const rnd = prng(11);
    const blob = gz(tar);
    let errors = 0;
    for (let i = 0; i < 300; i++) if ((await run(mutate(blob, rnd), OCI_LAYER_GZIP)) instanceof ShoalError) errors++;
    expect(errors).toBeGreaterThan(100);
  });

  it("uncompressed tar layers", async () => {
    const rnd = prng(12);
    let errors = 0;
    for (let i = 0; i < 300; i++) if ((await run(mutate(tar, rnd), OCI_LAYER_TAR)) instanceof ShoalError) errors++;
    expect(errors).toBeGreaterThan(50);
  });

  it("index payloads and index members", async () => {
    const out: Buffer[] = [];
    const r = await convertLayer(once(tar), OCI_LAYER_TAR, (b) => { out.push(b); }, { chunkSize: 4096 });
    const payload = r.index.encode();
    const blob = Buffer.concat(out);
    const region = blob.subarray(r.indexLocation.offset, r.indexLocation.offset + r.indexLocation.size);
    const rnd = prng(13);
    for (let i = 0; i < 500; i++) {
      for (const attempt of [() => LayerIndex.decode(mutate(payload, rnd)), () => decodeIndexMembers(mutate(region, rnd), r.indexLocation)]) {
        try {
          attempt();
        } catch (err) {
          if (!(err instanceof ShoalError)) throw new Error(`untyped error: ${String(err)}`, { cause: err });
        }
      }
    }
  });
});
