/** Fixtures of the read path's tests: a converted layer in memory. */
import { convertLayer, OCI_LAYER_TAR } from "@shoal/blockindex";
import { writeTar } from "@shoal/testkit";
import type { RemoteLayer } from "../src/index.ts";

/** A lazy layer of one incompressible file of `bytes` (64 KiB chunks): the layer, its blob and its tar stream. */
export async function layerFixture(bytes = 300_000, seed = 1): Promise<{ layer: RemoteLayer; blob: Buffer; tar: Buffer }> {
  const data = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24; // incompressible: chunks keep their size
  }
  const tar = Buffer.from(writeTar([{ path: "f", type: "file", mode: 0o644, data }]).tar);
  const out: Buffer[] = [];
  const r = await convertLayer([tar], OCI_LAYER_TAR, (b) => { out.push(Buffer.from(b)); }, { chunkSize: 65536 });
  return { layer: { digest: r.digest, registry: "r", repository: "x", index: r.index }, blob: Buffer.concat(out), tar };
}

/** Resolves after `ms` (for letting background work run; never asserted on). */
export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
