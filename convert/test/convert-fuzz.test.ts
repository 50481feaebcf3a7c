// shoal convert against mutated source images served by the real registry: bytes flipped in the
// gzip header, in the deflate data, in tar headers (re-compressed, with the diff_ids of what was
// mutated), and blobs whose stored bytes no longer match their digest. Every run ends in exit 0 with
// a lazy image whose layer inflates to the config's diffID, or in exit 1 with one line and a stable
// code; never a crash, a hang, a pushed manifest after a failure, or a temp dir left behind.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFor, mulberry32, pushForgedImage, randomBytes, runShoal, sha256DigestOf as digestOf, startRegistry, writeTar, type RunningRegistry } from "@shoal/testkit";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const RUNS = 24;

let registry: RunningRegistry;
let work: string;


beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-convert-fuzz-"));
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("shoal convert, fuzzed", () => {
  it(`ends every one of ${RUNS} mutated images in a correct lazy image or a typed one-line error, leaving nothing behind`, async () => {
    const rnd = mulberry32(20261202);
    const files = Array.from({ length: 12 }, (_, i) => ({ path: `d/f${i}`, type: "file" as const, mode: 0o644, data: Buffer.from(randomBytes(100 + i, 3000 + i * 5000)) }));
    const tar = writeTar([{ path: "d", type: "dir", mode: 0o755 }, ...files]).tar;
    const seen = new Map<string, number>();
    for (let run = 0; run < RUNS; run++) {
      const repo = `fuzz/r${run}`;
      const kind = ["gzip-header", "deflate", "tar-header", "stored-bytes"][run % 4]!;
      const pick = (n: number) => rnd() % n;
      const flip = (b: Buffer, at: number, mask: number) => {
        b[at] = b[at]! ^ mask;
      };
      let layer: Buffer;
      let diffId = digestOf(tar);
      if (kind === "tar-header") {
        // a flipped byte in one of the first headers, compressed again: the config names what was mutated
        const bad = Buffer.from(tar);
        flip(bad, 512 * pick(3) + pick(345), 1 << pick(8));
        layer = gzipSync(bad);
        diffId = digestOf(bad);
      } else {
        layer = gzipSync(tar);
        if (kind !== "stored-bytes") {
          const at = kind === "gzip-header" ? pick(10) : 10 + pick(layer.length - 18);
          flip(layer, at, 1 << pick(8));
        }
      }
      const { layerDigest } = await pushForgedImage(registry.url, repo, "v1", layer, configFor([diffId]));
      if (kind === "stored-bytes") {
        const hex = layerDigest.slice(7);
        const data = join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
        const bytes = await readFile(data);
        flip(bytes, 10 + pick(bytes.length - 18), 0x40);
        await writeFile(data, bytes);
      }
      const tmp = await mkdtemp(join(work, "tmp-"));
      const r = await runShoal(["convert", "--plain-http", "--no-cache", "--chunk-size", "16384", `${registry.host}/${repo}:v1`, `${registry.host}/${repo}:lazy`], { env: { TMPDIR: tmp }, timeoutMs: 60_000 });
      const what = `run ${run} (${kind}): exit ${r.code}: ${r.stderr.trim()}`;
      expect((await readdir(tmp)).filter((n) => n !== "node-compile-cache"), what).toEqual([]);
      const lazy = await fetch(`${registry.url}/v2/${repo}/manifests/lazy`, { headers: { accept: OCI_MANIFEST } });
      if (r.code === 0) {
        // a correct image: its one layer inflates to exactly the stream the config's diff_ids name
        expect(lazy.status, what).toBe(200);
        const m = (await lazy.json()) as { layers: Array<{ digest: string }> };
        const blob = Buffer.from(await (await fetch(`${registry.url}/v2/${repo}/blobs/${m.layers[0]!.digest}`)).arrayBuffer());
        expect(digestOf(gunzipSync(blob)), what).toBe(diffId);
        seen.set("converted", (seen.get("converted") ?? 0) + 1);
      } else {
        expect(r.code, what).toBe(1);
        expect(r.stderr, what).toMatch(/^shoal: .* \[SHOAL_ERR_[A-Z_]+\]\n$/);
        expect(lazy.status, what).toBe(404);
        const code = /\[(SHOAL_ERR_[A-Z_]+)\]/.exec(r.stderr)![1]!;
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    console.log("convert fuzz outcomes:", JSON.stringify(Object.fromEntries(seen)));
    expect([...seen.keys()].some((k) => k !== "converted")).toBe(true);
  }, 600_000);
});
