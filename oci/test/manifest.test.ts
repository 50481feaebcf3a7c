import { InvalidArgumentError } from "@shoal/base";
import { describe, expect, it } from "vitest";
import {
  hostPlatform,
  InvalidManifestError,
  isIndex,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  NoMatchingPlatformError,
  parseManifest,
  parsePlatform,
  selectPlatform,
  UnsupportedManifestError,
  type ImageIndex,
  type Platform,
} from "../src/index.ts";

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

const manifest = {
  schemaVersion: 2,
  mediaType: MEDIA_TYPE_OCI_MANIFEST,
  config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: d("1"), size: 10 },
  layers: [
    { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: d("2"), size: 20, annotations: { "containerd.io/snapshot/shoal.index": "x" } },
  ],
  annotations: { a: "b" },
};

function index(platforms: (Platform | undefined)[], mediaType: string = MEDIA_TYPE_OCI_INDEX): ImageIndex {
  const m = parseManifest(
    enc({
      schemaVersion: 2,
      mediaType,
      manifests: platforms.map((p, i) => ({ mediaType: MEDIA_TYPE_OCI_MANIFEST, digest: d(String(i + 1)), size: 100 + i, ...(p ? { platform: p } : {}) })),
    }),
  );
  if (!isIndex(m)) throw new Error("not an index");
  return m;
}

describe("parseManifest", () => {
  it("parses an OCI manifest", () => {
    const m = parseManifest(enc(manifest), "application/vnd.oci.image.manifest.v1+json; charset=utf-8");
    expect(isIndex(m)).toBe(false);
    expect(m).toEqual(manifest);
  });

  it("takes the media type from the header when the document has none", () => {
    const { mediaType: _, ...noType } = manifest;
    expect(parseManifest(enc(noType), MEDIA_TYPE_DOCKER_MANIFEST).mediaType).toBe(MEDIA_TYPE_DOCKER_MANIFEST);
    expect(parseManifest(enc(noType), "application/json").mediaType).toBe(MEDIA_TYPE_OCI_MANIFEST);
    expect(parseManifest(enc(noType)).mediaType).toBe(MEDIA_TYPE_OCI_MANIFEST);
  });

  it("parses indexes and Docker manifest lists with platforms", () => {
    const i = index([{ os: "linux", architecture: "arm", variant: "v7", "os.features": ["x"] }], MEDIA_TYPE_DOCKER_MANIFEST_LIST);
    expect(i.mediaType).toBe(MEDIA_TYPE_DOCKER_MANIFEST_LIST);
    expect(i.manifests[0]!.platform).toEqual({ os: "linux", architecture: "arm", variant: "v7", "os.features": ["x"] });
    const { mediaType: _, ...noType } = { schemaVersion: 2, mediaType: "", manifests: [] };
    expect(parseManifest(enc(noType)).mediaType).toBe(MEDIA_TYPE_OCI_INDEX);
  });

  const junk: [string, Uint8Array, string | undefined, new (...a: never[]) => Error][] = [
    ["not JSON", new TextEncoder().encode("{nope"), undefined, InvalidManifestError],
    ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), undefined, InvalidManifestError],
    ["an array", enc([1]), undefined, InvalidManifestError],
    ["schema 1", enc({ schemaVersion: 1, name: "x", fsLayers: [] }), undefined, UnsupportedManifestError],
    ["schema 1 header", enc({}), "application/vnd.docker.distribution.manifest.v1+prettyjws", UnsupportedManifestError],
    ["unknown type", enc({ ...manifest, mediaType: "application/vnd.example+json" }), undefined, UnsupportedManifestError],
    ["shapeless", enc({ schemaVersion: 2 }), undefined, UnsupportedManifestError],
    ["wrong schemaVersion", enc({ ...manifest, schemaVersion: 3 }), undefined, InvalidManifestError],
    ["type contradicting header", enc(manifest), MEDIA_TYPE_DOCKER_MANIFEST, InvalidManifestError],
    ["bad digest", enc({ ...manifest, config: { ...manifest.config, digest: "sha256:xyz" } }), undefined, InvalidManifestError],
    ["negative size", enc({ ...manifest, layers: [{ ...manifest.layers[0], size: -1 }] }), undefined, InvalidManifestError],
    ["fractional size", enc({ ...manifest, layers: [{ ...manifest.layers[0], size: 1.5 }] }), undefined, InvalidManifestError],
    ["string size", enc({ ...manifest, config: { ...manifest.config, size: "10" } }), undefined, InvalidManifestError],
    ["missing config", enc({ ...manifest, config: undefined }), undefined, InvalidManifestError],
    ["layers not array", enc({ ...manifest, layers: {} }), undefined, InvalidManifestError],
    ["non-string annotation", enc({ ...manifest, annotations: { a: 1 } }), undefined, InvalidManifestError],
    ["platform on a layer", enc({ ...manifest, layers: [{ ...manifest.layers[0], platform: { os: "linux", architecture: "amd64" } }] }), undefined, InvalidManifestError],
    ["index without manifests", enc({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX }), undefined, InvalidManifestError],
    ["index entry missing os", enc({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: [{ mediaType: "x", digest: d("1"), size: 1, platform: { architecture: "amd64" } }] }), undefined, InvalidManifestError],
  ];
  for (const [name, bytes, header, cls] of junk) {
    it(`rejects ${name}`, () => {
      expect(() => parseManifest(bytes, header)).toThrow(cls);
    });
  }
});

describe("selectPlatform", () => {
  const amd64 = { os: "linux", architecture: "amd64" };
  const arm64 = { os: "linux", architecture: "arm64", variant: "v8" };
  const armv6 = { os: "linux", architecture: "arm", variant: "v6" };
  const armv7 = { os: "linux", architecture: "arm", variant: "v7" };
  const win = { os: "windows", architecture: "amd64", "os.version": "10.0.17763.1" };
  const attestation = { os: "unknown", architecture: "unknown" };

  it("matches os and architecture", () => {
    const i = index([win, amd64, arm64]);
    expect(selectPlatform(i, { os: "linux", architecture: "amd64" }).digest).toBe(d("2"));
    expect(selectPlatform(i, { os: "windows", architecture: "amd64" }).digest).toBe(d("1"));
  });

  it("treats a missing arm64 variant as v8 and prefers exact arm variants", () => {
    expect(selectPlatform(index([amd64, { os: "linux", architecture: "arm64" }]), arm64).digest).toBe(d("2"));
    expect(selectPlatform(index([armv6, armv7]), armv7).digest).toBe(d("2"));
    expect(selectPlatform(index([armv7, armv6]), armv6).digest).toBe(d("2"));
  });

  it("falls back to an older compatible arm variant but never a newer one", () => {
    expect(selectPlatform(index([amd64, armv6]), armv7).digest).toBe(d("2"));
    expect(() => selectPlatform(index([armv7]), armv6)).toThrow(NoMatchingPlatformError);
  });

  it("lists available platforms when nothing matches", () => {
    let err: NoMatchingPlatformError | undefined;
    try {
      selectPlatform(index([amd64, armv7, attestation, undefined]), parsePlatform("linux/s390x"));
    } catch (e) {
      err = e as NoMatchingPlatformError;
    }
    expect(err).toBeInstanceOf(NoMatchingPlatformError);
    expect(err!.code).toBe("SHOAL_ERR_NO_MATCHING_PLATFORM");
    expect(err!.available).toEqual(["linux/amd64", "linux/arm/v7", "unknown/unknown"]);
    expect(err!.message).toContain("linux/s390x");
    expect(err!.message).toContain("linux/arm/v7");
  });

  it("defaults to this host", () => {
    const host = hostPlatform();
    expect(host.os).toBe("linux");
    const expected = { x64: "amd64", arm64: "arm64", arm: "arm", ia32: "386" }[process.arch as string] ?? process.arch;
    expect(host.architecture).toBe(expected);
    const i = index([{ os: "linux", architecture: "some-other-arch" }, host]);
    expect(selectPlatform(i).digest).toBe(d("2"));
  });

  it("parsePlatform checks its input", () => {
    expect(parsePlatform("linux/arm/v7")).toEqual(armv7);
    expect(() => parsePlatform("linux")).toThrow(InvalidArgumentError);
    expect(() => parsePlatform("linux//v7")).toThrow(InvalidArgumentError);
  });
});
