import { appendFile, chmod, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { edgeCaseImage, largeImage } from "../src/fixtures.ts";
import type { EdgeCaseImage } from "../src/fixtures.ts";
import { MediaTypes, ociArchitecture, readLayoutBlob, REF_NAME_ANNOTATION, sha256Digest, writeImageLayout } from "../src/image-layout.ts";
import type { LayoutImage } from "../src/image-layout.ts";
import { umociUnpack } from "../src/push.ts";
import { diffTrees, snapshotTree } from "../src/tree.ts";
import type { TreeSnapshot } from "../src/tree.ts";

let tmp: string;
let img: EdgeCaseImage;
let layout: LayoutImage;
let first: TreeSnapshot;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "shoal-umoci-"));
  img = edgeCaseImage(); // default 1 MiB chunks, 3000 small files
  layout = await writeImageLayout(join(tmp, "layout"), img.layers, { tag: "edge" });
  first = await snapshotTree((await umociUnpack(layout.dir, "edge", join(tmp, "bundle1"))).rootfs);
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe("writeImageLayout", () => {
  it("writes a valid OCI layout whose digests, diffIDs and media types match the layers", async () => {
    expect(JSON.parse(await readFile(join(layout.dir, "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = JSON.parse(await readFile(join(layout.dir, "index.json"), "utf8"));
    expect(index.manifests).toEqual([{
      mediaType: MediaTypes.ociManifest, digest: layout.manifestDigest, size: layout.manifestSize,
      annotations: { [REF_NAME_ANNOTATION]: "edge" },
    }]);
    // Every blob is stored under its own digest.
    for (const name of await readdir(join(layout.dir, "blobs/sha256"))) {
      expect(sha256Digest(await readLayoutBlob(layout.dir, `sha256:${name}`))).toBe(`sha256:${name}`);
    }
    const manifest = JSON.parse(new TextDecoder().decode(await readLayoutBlob(layout.dir, layout.manifestDigest)));
    const config = JSON.parse(new TextDecoder().decode(await readLayoutBlob(layout.dir, layout.configDigest)));
    expect(manifest.config).toEqual({ mediaType: MediaTypes.ociConfig, digest: layout.configDigest, size: layout.configSize });
    expect(config).toMatchObject({ architecture: ociArchitecture(), os: "linux", rootfs: { type: "layers", diff_ids: layout.diffIds } });
    expect(config.history).toHaveLength(img.layers.length);
    for (const [i, l] of img.layers.entries()) {
      const desc = manifest.layers[i];
      const blob = await readLayoutBlob(layout.dir, desc.digest);
      expect(desc.mediaType).toBe(l.compression === "gzip" ? MediaTypes.ociLayerGzip : MediaTypes.ociLayer);
      expect(desc.size).toBe(blob.length);
      const tar = l.compression === "gzip" ? new Uint8Array(gunzipSync(blob)) : blob;
      expect(Buffer.compare(tar, l.tar)).toBe(0);
      expect(layout.diffIds[i]).toBe(sha256Digest(l.tar));
    }
    expect(img.layers.map((l) => l.compression)).toContain("none");
  });

  it("keeps other tags and writes Docker schema2 media types on request", async () => {
    const dir = join(tmp, "two-tags");
    const layers = largeImage({ totalBytes: 300_000, maxFileSize: 100_000 }).layers;
    const a = await writeImageLayout(dir, layers, { tag: "a" });
    const d = await writeImageLayout(dir, layers, { tag: "d", manifestFormat: "docker" });
    const again = await writeImageLayout(dir, layers, { tag: "a" });
    expect(again.manifestDigest).toBe(a.manifestDigest);
    const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8"));
    expect(index.manifests.map((m: { annotations: Record<string, string> }) => m.annotations[REF_NAME_ANNOTATION])).toEqual(["d", "a"]);
    const manifest = JSON.parse(new TextDecoder().decode(d.manifestBytes));
    expect(manifest.mediaType).toBe(MediaTypes.dockerManifest);
    expect(manifest.config.mediaType).toBe(MediaTypes.dockerConfig);
    expect(manifest.layers[0].mediaType).toBe(MediaTypes.dockerLayerGzip);
    expect(d.configDigest).toBe(a.configDigest);
  });
});

describe("edge-case image under umoci unpack", () => {
  it("applies whiteouts, opaque dirs and type replacements", () => {
    for (const p of img.checks.absent) expect(first.has(p), p).toBe(false);
    for (const [p, type] of Object.entries(img.checks.types)) expect(first.get(p)?.type, p).toBe(type);
    const under = (dir: string): string[] => [...first.keys()].filter((p) => p.startsWith(`${dir}/`));
    expect(under("opaque")).toEqual(["opaque/keep-name", "opaque/new1", "opaque/sub3", "opaque/sub3/new3"]);
    expect(under("wh")).toEqual(["wh/keep.txt", "wh/recreated"]);
    expect(under("replace")).toEqual(["replace/dir-becomes-file", "replace/file-becomes-dir", "replace/file-becomes-dir/child"]);
    expect(first.get("links/target.txt")?.hardlinks).toEqual(["links/cross", "links/hard1", "links/hard2", "links/target.txt"]);
    expect(first.get("links/broken-later")?.hardlinks).toBeUndefined();
    expect(first.get("links/broken-later-peer")?.hardlinks).toBeUndefined();
    expect(first.get("meta/pax-big-ids")).toMatchObject({ uid: 3_000_000_000, gid: 3_000_000_001 });
    expect(first.get("meta/mtime-frac")?.mtimeNs).toBe(1_234_567_890_123_456_789n);
    expect(first.get("dev/loop0")).toMatchObject({ type: "block", rdevMajor: 7, rdevMinor: 0 });
    expect(first.get("usr/bin/all-special")?.mode).toBe(0o7755);
    expect([...first.keys()].filter((p) => p.startsWith("many/") && first.get(p)?.type === "file")).toHaveLength(3000);
    if (first.xattrsCaptured) {
      expect(first.get("xattr/user")?.xattrs).toEqual({ "trusted.shoal": "31", "user.binary": "000102feff", "user.comment": "68656c6c6f" });
    }
  });

  it("produces exactly the tree the layer model predicts", () => {
    expect(diffTrees(img.expected, first)).toEqual([]);
  });

  it("unpacks identically twice, and a mutated file shows up in the diff", async () => {
    const bundle = await umociUnpack(layout.dir, "edge", join(tmp, "bundle2"));
    expect(diffTrees(first, await snapshotTree(bundle.rootfs))).toEqual([]);
    const victim = img.boundaryFiles.find((f) => f.path === "bnd/at-boundary-exact")?.path ?? "";
    await appendFile(join(bundle.rootfs, victim), "x");
    await chmod(join(bundle.rootfs, "etc/passwd"), 0o600);
    const diff = diffTrees(first, await snapshotTree(bundle.rootfs));
    expect(diff).toContain(`${victim}: size ${img.chunkSize} != ${img.chunkSize + 1}`);
    expect(diff).toContain("etc/passwd: mode 0o644 != 0o600");
    expect(diff.every((d) => d.startsWith(victim) || d.startsWith("etc/passwd"))).toBe(true);
  });
});

describe("largeImage", () => {
  it("holds about totalBytes of data and the known small file", async () => {
    const big = largeImage({ totalBytes: 6_000_000, layers: 3 });
    expect(big.fileBytes).toBe(6_000_000);
    expect(big.layers).toHaveLength(3);
    const l = await writeImageLayout(join(tmp, "large"), big.layers, { tag: "big" });
    const compressed = l.layers.reduce((n, x) => n + x.size, 0);
    expect(compressed).toBeGreaterThan(6_000_000); // incompressible
    const rootfs = (await umociUnpack(l.dir, "big", join(tmp, "large-bundle"))).rootfs;
    const snap = await snapshotTree(rootfs, { xattrs: false });
    expect(snap.get(big.smallFile.path)?.sha256).toBe(big.smallFile.sha256);
    expect(big.smallFile.data.length).toBeLessThan(0.05 * compressed);
    expect([...snap.values()].filter((n) => n.type === "file")).toHaveLength(big.fileCount + 1);
  });
});
