import { BadRequestError } from "@shoal/base";
import { describe, expect, it } from "vitest";
import { parseMirrorRequest } from "../src/index.ts";

const D = `sha256:${"a".repeat(64)}`;
const parse = (path: string, query = "") => parseMirrorRequest(path, new URLSearchParams(query), "docker.io");

describe("parseMirrorRequest", () => {
  it("names the registry by ns, by a host-like first segment, or by the default", () => {
    expect(parse("/v2/")).toEqual({ kind: "ping", registry: undefined });
    expect(parse("/v2/", "ns=reg.example:5000")).toEqual({ kind: "ping", registry: "reg.example:5000" });
    expect(parse("/v2/team/app/manifests/v1", "ns=reg.example")).toEqual({ kind: "manifest", registry: "reg.example", repository: "team/app", reference: "v1" });
    expect(parse(`/v2/127.0.0.1:5000/team/app/blobs/${D}`)).toEqual({ kind: "blob", registry: "127.0.0.1:5000", repository: "team/app", reference: D });
    expect(parse(`/v2/127.0.0.1__5000/team/app/blobs/${D}`)).toMatchObject({ registry: "127.0.0.1:5000", repository: "team/app" });
    expect(parse("/v2/localhost/app/manifests/v1")).toMatchObject({ registry: "localhost", repository: "app" });
    expect(parse(`/v2/team/app/manifests/${D}`)).toEqual({ kind: "manifest", registry: "docker.io", repository: "team/app", reference: D });
    // Docker Hub's official images
    expect(parse("/v2/ubuntu/manifests/24.04")).toMatchObject({ registry: "docker.io", repository: "library/ubuntu" });
    expect(parse("/v2/ubuntu/manifests/24.04", "ns=docker.io")).toMatchObject({ repository: "library/ubuntu" });
  });

  it("refuses what is not the read API, with a bad request", () => {
    for (const [path, query] of [
      ["/v1/x", ""], ["/v2/app/tags/list", ""], ["/v2/app/blobs/latest", ""], ["/v2/app/blobs/sha256:xyz", ""], ["/v2/App/manifests/v1", ""],
      ["/v2/app/manifests/-bad", ""], ["/v2/app/manifests/v1", "ns=bad host"], ["/v2/%zz/manifests/v1", ""], [`/v2/app/manifests/sha512:${"a".repeat(128)}`, ""],
    ] as const) {
      expect(() => parse(path, query), `${path}?${query}`).toThrow(BadRequestError);
    }
  });
});
