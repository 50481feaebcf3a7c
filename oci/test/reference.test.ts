import { describe, expect, it } from "vitest";
import { InvalidReferenceError, makeReference, manifestReference, parseReference, registryApiHost } from "../src/index.ts";

const D = `sha256:${"a".repeat(64)}`;

describe("parseReference", () => {
  const ok: [string, { registry: string; repository: string; tag?: string; digest?: string }, string][] = [
    ["alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest" }, "docker.io/library/alpine:latest"],
    ["alpine:3.19", { registry: "docker.io", repository: "library/alpine", tag: "3.19" }, "docker.io/library/alpine:3.19"],
    ["library/alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest" }, "docker.io/library/alpine:latest"],
    ["user/app:v1", { registry: "docker.io", repository: "user/app", tag: "v1" }, "docker.io/user/app:v1"],
    ["docker.io/alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest" }, "docker.io/library/alpine:latest"],
    ["index.docker.io/alpine", { registry: "docker.io", repository: "library/alpine", tag: "latest" }, "docker.io/library/alpine:latest"],
    ["docker.io/user/app", { registry: "docker.io", repository: "user/app", tag: "latest" }, "docker.io/user/app:latest"],
    ["localhost/app", { registry: "localhost", repository: "app", tag: "latest" }, "localhost/app:latest"],
    ["localhost:5000/app:1", { registry: "localhost:5000", repository: "app", tag: "1" }, "localhost:5000/app:1"],
    ["127.0.0.1:5000/a/b/c:t", { registry: "127.0.0.1:5000", repository: "a/b/c", tag: "t" }, "127.0.0.1:5000/a/b/c:t"],
    ["ghcr.io/org/img", { registry: "ghcr.io", repository: "org/img", tag: "latest" }, "ghcr.io/org/img:latest"],
    ["quay.io/org/img@" + D, { registry: "quay.io", repository: "org/img", digest: D }, `quay.io/org/img@${D}`],
    ["host:5000/repo@" + D, { registry: "host:5000", repository: "repo", digest: D }, `host:5000/repo@${D}`],
    ["repo:tag@" + D, { registry: "docker.io", repository: "library/repo", tag: "tag", digest: D }, `docker.io/library/repo:tag@${D}`],
    ["[::1]:5000/repo:t", { registry: "[::1]:5000", repository: "repo", tag: "t" }, "[::1]:5000/repo:t"],
    ["Registry/app", { registry: "Registry", repository: "app", tag: "latest" }, "Registry/app:latest"],
    ["a.b/c__d/e-f/g.h_i:Tag_1.0-x", { registry: "a.b", repository: "c__d/e-f/g.h_i", tag: "Tag_1.0-x" }, "a.b/c__d/e-f/g.h_i:Tag_1.0-x"],
    ["a---b", { registry: "docker.io", repository: "library/a---b", tag: "latest" }, "docker.io/library/a---b:latest"],
    ["localhost:5000", { registry: "docker.io", repository: "library/localhost", tag: "5000" }, "docker.io/library/localhost:5000"],
    [`x/y@sha512:${"b".repeat(128)}`, { registry: "docker.io", repository: "x/y", digest: `sha512:${"b".repeat(128)}` }, `docker.io/x/y@sha512:${"b".repeat(128)}`],
  ];
  for (const [input, want, str] of ok) {
    it(`parses ${input}`, () => {
      const ref = parseReference(input);
      expect({ registry: ref.registry, repository: ref.repository, tag: ref.tag, digest: ref.digest }).toEqual({ tag: undefined, digest: undefined, ...want });
      expect(String(ref)).toBe(str);
      // the canonical form parses to the same thing
      expect(String(parseReference(String(ref)))).toBe(str);
    });
  }

  const bad: [string, RegExp][] = [
    ["", /empty/],
    ["Alpine", /lowercase/],
    ["docker.io/User/app", /lowercase/],
    ["repo:", /invalid tag/],
    ["repo:-tag", /invalid tag/],
    [`repo:${"t".repeat(129)}`, /invalid tag/],
    ["repo@sha256:abc", /64 lowercase hex/],
    [`repo@sha256:${"A".repeat(64)}`, /64 lowercase hex/],
    [`repo@md5:${"a".repeat(32)}`, /unsupported digest algorithm/],
    ["repo@", /digest/],
    ["repo@sha256", /digest/],
    ["a//b", /invalid repository/],
    ["a/b/", /invalid repository|empty/],
    ["/a", /invalid repository|empty/],
    ["host:5000/", /empty repository/],
    ["a_/b", /invalid repository/],
    ["-a", /invalid repository/],
    ["a b", /invalid repository/],
    ["ex ample.com/a", /invalid/],
    ["-bad.host/a", /invalid registry host/],
    ["host:port/a", /invalid registry host/],
    ["a" .repeat(64).replace(/a/g, "f"), /64-byte hexadecimal/],
    [`ghcr.io/${"a/".repeat(130)}a`, /longer than 255/],
  ];
  for (const [input, reason] of bad) {
    it(`rejects ${JSON.stringify(input.slice(0, 40))}`, () => {
      let err: unknown;
      try {
        parseReference(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidReferenceError);
      expect((err as InvalidReferenceError).code).toBe("SHOAL_ERR_INVALID_REFERENCE");
      expect((err as Error).message).toMatch(reason);
    });
  }
});

describe("reference helpers", () => {
  it("maps docker.io to the API host", () => {
    expect(registryApiHost("docker.io")).toBe("registry-1.docker.io");
    expect(registryApiHost("index.docker.io")).toBe("registry-1.docker.io");
    expect(registryApiHost("127.0.0.1:5000")).toBe("127.0.0.1:5000");
    expect(registryApiHost("ghcr.io")).toBe("ghcr.io");
  });
  it("manifestReference prefers the digest", () => {
    expect(manifestReference(parseReference(`a:t@${D}`))).toBe(D);
    expect(manifestReference(parseReference("a:t"))).toBe("t");
    expect(manifestReference(parseReference("a"))).toBe("latest");
  });
  it("makeReference builds and validates", () => {
    expect(String(makeReference({ registry: "127.0.0.1:5000", repository: "x/y", digest: D }))).toBe(`127.0.0.1:5000/x/y@${D}`);
    expect(() => makeReference({ registry: "docker.io", repository: "alpine" })).toThrow(InvalidReferenceError);
    expect(() => makeReference({ registry: "h:1", repository: "UP" })).toThrow(InvalidReferenceError);
  });
});
