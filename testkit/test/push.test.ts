import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeCaseImage } from "../src/fixtures.ts";
import { pushLayoutHttp } from "../src/http-push.ts";
import { MediaTypes, sha256Digest, writeImageLayout } from "../src/image-layout.ts";
import type { LayoutImage } from "../src/image-layout.ts";
import { pullLayout, pushLayout, umociUnpack } from "../src/push.ts";
import { startRegistry } from "../src/registry.ts";
import type { RunningRegistry } from "../src/registry.ts";
import { diffTrees, snapshotTree } from "../src/tree.ts";

let tmp: string;
let registry: RunningRegistry;
let layout: LayoutImage;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "shoal-push-"));
  registry = await startRegistry();
  const img = edgeCaseImage({ chunkSize: 65536, smallFileCount: 100 });
  layout = await writeImageLayout(join(tmp, "layout"), img.layers, { tag: "edge" });
});
afterAll(async () => {
  await registry?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function getManifest(repo: string, ref: string): Promise<{ bytes: Uint8Array; type: string | null }> {
  const res = await fetch(`${registry.url}/v2/${repo}/manifests/${ref}`, {
    headers: { accept: `${MediaTypes.ociManifest}, ${MediaTypes.dockerManifest}` },
  });
  expect(res.status).toBe(200);
  return { bytes: new Uint8Array(await res.arrayBuffer()), type: res.headers.get("content-type") };
}

describe("skopeo push/pull of fixture layouts", () => {
  it("pushes with the layout's exact manifest digest (uncompressed layer kept) and pulls it back", async () => {
    await pushLayout(layout.dir, "edge", `${registry.host}/fixtures/edge:v1`);
    const m = await getManifest("fixtures/edge", "v1");
    expect(sha256Digest(m.bytes)).toBe(layout.manifestDigest);
    expect(Buffer.compare(m.bytes, layout.manifestBytes)).toBe(0);

    const pulled = join(tmp, "pulled");
    await pullLayout(`${registry.host}/fixtures/edge@${layout.manifestDigest}`, pulled, { tag: "edge" });
    const index = JSON.parse(await readFile(join(pulled, "index.json"), "utf8"));
    expect(index.manifests[0].digest).toBe(layout.manifestDigest);

    const a = await snapshotTree((await umociUnpack(layout.dir, "edge", join(tmp, "b-orig"))).rootfs);
    const b = await snapshotTree((await umociUnpack(pulled, "edge", join(tmp, "b-pulled"))).rootfs);
    expect(diffTrees(a, b)).toEqual([]);
  });

  it("pushes a Docker schema2 variant byte for byte over HTTP", async () => {
    const dir = join(tmp, "layout");
    const docker = await writeImageLayout(dir, edgeCaseImage({ chunkSize: 65536, smallFileCount: 10 }).layers, {
      tag: "docker", manifestFormat: "docker",
    });
    const digest = await pushLayoutHttp(dir, "docker", `${registry.host}/fixtures/docker:v1`);
    expect(digest).toBe(docker.manifestDigest);
    const m = await getManifest("fixtures/docker", "v1");
    expect(m.type).toBe(MediaTypes.dockerManifest);
    expect(sha256Digest(m.bytes)).toBe(docker.manifestDigest);
  });
});
