/**
 * Which registry, repository and object a mirror request is for. Three forms
 * name the registry:
 *
 * - containerd's `hosts.toml` mirrors add `?ns=<registry>` to every request;
 * - podman's and CRI-O's `registries.conf` mirrors have no `ns`: their
 *   location carries the registry as the first path segment,
 *   `location = "127.0.0.1:7075/registry.example"`, so requests arrive as
 *   `/v2/registry.example/<name>/...`. A reference's path may not hold a
 *   `:`, so a port is written `__` (`registry.example__5000`): host names
 *   never hold `_`;
 * - Docker's and PouchContainer's `registry-mirrors` mirror only Docker Hub
 *   and send plain `/v2/<name>/...`: the default upstream.
 *
 * A first segment is taken as a registry when it looks like a host (has a
 * `.` or a `:`, or is `localhost`), as Docker's reference grammar does.
 */
import { BadRequestError, isSha256Digest } from "@shoal/base";
import { assertRepository, assertTag, DOCKER_HUB_REGISTRY } from "@shoal/oci";
import { assertRegistryName } from "@shoal/swarm";

/** A parsed mirror request: the API version check, or a manifest or blob of one repository. */
export type MirrorRequest = { kind: "ping"; registry: string | undefined } | ObjectRequest;

/** A manifest (by tag or digest) or a blob (by digest) of one repository. */
export interface ObjectRequest {
  kind: "manifest" | "blob";
  registry: string;
  repository: string;
  /** A tag or a `sha256:` digest; always a digest for blobs. */
  reference: string;
}

const OBJECT_RE = /^(.+)\/(manifests|blobs)\/([^/]+)$/;

function looksLikeHost(segment: string): boolean {
  return segment.includes(".") || segment.includes(":") || segment === "localhost";
}

/** Parse the raw path and query of a request; `BadRequestError` for anything that is not the read API. */
export function parseMirrorRequest(rawPath: string, query: URLSearchParams, defaultRegistry: string): MirrorRequest {
  const ns = query.get("ns") ?? undefined;
  if (ns !== undefined) assertRegistryName(ns);
  if (rawPath === "/v2" || rawPath === "/v2/") return { kind: "ping", registry: ns };
  if (!rawPath.startsWith("/v2/")) throw new BadRequestError("not a registry API path (/v2/...)");
  let path: string;
  try {
    path = decodeURIComponent(rawPath.slice("/v2/".length));
  } catch (err) {
    throw new BadRequestError("malformed percent-encoding in the path", { cause: err });
  }
  const m = OBJECT_RE.exec(path);
  if (!m) throw new BadRequestError("the mirror serves only /v2/<name>/manifests/<reference> and /v2/<name>/blobs/<digest>");
  const [, name, what, reference] = m as unknown as [string, string, "manifests" | "blobs", string];
  let registry = ns;
  let repository = name;
  if (registry === undefined) {
    const slash = name.indexOf("/");
    const first = slash > 0 ? name.slice(0, slash).replace(/__(\d{1,5})$/, ":$1") : "";
    if (first && looksLikeHost(first)) {
      assertRegistryName(first);
      registry = first;
      repository = name.slice(slash + 1);
    } else {
      registry = defaultRegistry;
    }
  }
  if (registry === DOCKER_HUB_REGISTRY && !repository.includes("/")) repository = `library/${repository}`;
  try {
    assertRepository(repository);
    if (what === "blobs" || reference.includes(":")) {
      if (!isSha256Digest(reference)) throw new BadRequestError(`${reference.slice(0, 80)} is not a sha256 digest`);
    } else {
      assertTag(reference);
    }
  } catch (err) {
    if (err instanceof BadRequestError) throw err;
    throw new BadRequestError((err as Error).message, { cause: err });
  }
  return { kind: what === "blobs" ? "blob" : "manifest", registry, repository, reference };
}
