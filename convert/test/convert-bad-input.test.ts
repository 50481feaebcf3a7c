// shoal convert against source images that lie: a config that is not JSON or names other diffIDs,
// gzip corrupted near its start, a blob whose stored bytes no longer match its digest. Every run
// ends in one line with a stable code, pushes no manifest and leaves no temp dir.
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configFor, pushForgedImage, runShoal, sha256DigestOf as digestOf, startRegistry, writeTar, type RunningRegistry } from "@shoal/testkit";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";

let registry: RunningRegistry;
let work: string;

/** Push repo:v1 with one gzip layer `layer` and config `config` (bytes, or a diffID list to write one). */
function pushImage(repo: string, layer: Buffer, config: Buffer | string[]): Promise<{ layerDigest: string }> {
  return pushForgedImage(registry.url, repo, "v1", layer, Buffer.isBuffer(config) ? config : configFor(config));
}

/** `shoal convert repo:v1 repo:lazy` with its own empty TMPDIR: the result, and what it left there. */
async function convert(repo: string): Promise<{ code: number; stderr: string; left: string[]; lazyTagged: boolean }> {
  const tmp = await mkdtemp(join(work, "tmp-"));
  const r = await runShoal(["convert", "--plain-http", "--no-cache", `${registry.host}/${repo}:v1`, `${registry.host}/${repo}:lazy`], { env: { TMPDIR: tmp } });
  const lazy = await fetch(`${registry.url}/v2/${repo}/manifests/lazy`, { method: "HEAD", headers: { accept: OCI_MANIFEST } });
  // Node keeps its own compile cache in TMPDIR; anything else was shoal's
  return { code: r.code, stderr: r.stderr, left: (await readdir(tmp)).filter((n) => n !== "node-compile-cache"), lazyTagged: lazy.status === 200 };
}

const tar = writeTar([{ path: "etc", type: "dir", mode: 0o755 }, { path: "etc/hello", type: "file", mode: 0o644, data: Buffer.alloc(300_000, 7) }]).tar;

beforeAll(async () => {
  registry = await startRegistry();
  work = await mkdtemp(join(tmpdir(), "shoal-convert-bad-"));
}, 60_000);

afterAll(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("shoal convert refuses source images that lie, with one line and nothing left behind", () => {
  it("converts the honest image (the control)", async () => {
    await pushImage("honest", gzipSync(tar), [digestOf(tar)]);
    const r = await convert("honest");
    expect(r.code, r.stderr).toBe(0);
    expect([r.left, r.lazyTagged]).toEqual([[], true]);
  });

  it("a config that is not JSON", async () => {
    await pushImage("notjson", gzipSync(tar), Buffer.from("this is not { json"));
    const r = await convert("notjson");
    expect([r.code, r.left, r.lazyTagged]).toEqual([1, [], false]);
    expect(r.stderr).toMatch(/^shoal: config sha256:[0-9a-f]{64} of .* is not JSON \[SHOAL_ERR_BAD_CONFIG\]\n$/);
  });

  it("a config whose diff_ids name another layer", async () => {
    await pushImage("wrongdiff", gzipSync(tar), [`sha256:${"12".repeat(32)}`]);
    const r = await convert("wrongdiff");
    expect([r.code, r.left, r.lazyTagged]).toEqual([1, [], false]);
    expect(r.stderr).toMatch(/^shoal: .*diff_ids.*digest mismatch.* \[SHOAL_ERR_DIGEST_MISMATCH\]\n$/);
  });

  it("gzip corrupted near its start", async () => {
    const bad = gzipSync(tar);
    bad[12] = bad[12]! ^ 0xff;
    await pushImage("corrupt", bad, [digestOf(tar)]);
    const r = await convert("corrupt");
    expect([r.code, r.left, r.lazyTagged]).toEqual([1, [], false]);
    expect(r.stderr).toMatch(/^shoal: .* \[SHOAL_ERR_(GZIP_CORRUPT|TAR_[A-Z_]+|DIGEST_MISMATCH)\]\n$/);
  });

  it("a blob whose stored bytes no longer match its digest", async () => {
    const { layerDigest } = await pushImage("tampered", gzipSync(tar), [digestOf(tar)]);
    const hex = layerDigest.slice(7);
    const data = join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const bytes = await readFile(data);
    bytes[bytes.length >> 1] = bytes[bytes.length >> 1]! ^ 0xff;
    await writeFile(data, bytes);
    const r = await convert("tampered");
    expect([r.code, r.left, r.lazyTagged]).toEqual([1, [], false]);
    expect(r.stderr).toMatch(/^shoal: .* \[SHOAL_ERR_(DIGEST_MISMATCH|GZIP_CORRUPT)\]\n$/);
  });
});
