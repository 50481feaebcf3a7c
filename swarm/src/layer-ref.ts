/** Naming one layer blob in one repository of one registry. */
import { BadRequestError, isSha256Digest } from "@shoal/base";
import { assertRepository } from "@shoal/oci";

/** A layer blob: `registry/repository@digest`. */
export interface LayerRef {
  /** Registry host as in references: `127.0.0.1:5000`, `docker.io`. */
  registry: string;
  /** Repository path, may contain slashes: `team/app`. */
  repository: string;
  /** Blob digest `sha256:<hex>`. */
  digest: string;
}

const REGISTRY_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;

/** Throws `BadRequestError` unless `registry` looks like `host[:port]`. */
export function assertRegistryName(registry: string): void {
  if (registry.length > 255 || !REGISTRY_RE.test(registry)) throw new BadRequestError(`invalid registry name ${JSON.stringify(registry.slice(0, 100))}`);
}

/**
 * Parse the path segments after a blob route (`/v1/chunks/`, `/v1/index/`,
 * `/v1/blobs/`): `<registry>/<repo...>/<digest>`,
 * each segment percent-decoded (so `sha256%3A…` works). The repository is
 * every segment between the first and the last. Throws `BadRequestError`.
 */
export function parseLayerPath(rest: string): LayerRef {
  let segments: string[];
  try {
    segments = rest.split("/").map((s) => decodeURIComponent(s));
  } catch (err) {
    throw new BadRequestError("bad percent-encoding in path", { cause: err });
  }
  if (segments.length < 3 || segments.some((s) => s.length === 0)) {
    throw new BadRequestError("path must be /v1/chunks/<registry>/<repository>/<sha256:digest>");
  }
  const registry = segments[0]!;
  const digest = segments[segments.length - 1]!;
  const repository = segments.slice(1, -1).join("/");
  assertRegistryName(registry);
  if (!isSha256Digest(digest)) throw new BadRequestError(`invalid layer digest ${JSON.stringify(digest.slice(0, 80))}`);
  try {
    assertRepository(repository);
  } catch (err) {
    throw new BadRequestError(`invalid repository ${JSON.stringify(repository.slice(0, 200))}`, { cause: err });
  }
  return { registry, repository, digest };
}

/** Stable string key of a layer ref. */
export function layerKey(ref: LayerRef): string {
  return `${ref.registry}/${ref.repository}@${ref.digest}`;
}

/** The path segments a blob route names `layer` by: `<registry>/<repo...>/<digest>`, each segment percent-encoded (`:` kept, as paths allow). */
export function layerPath(layer: LayerRef): string {
  return [layer.registry, ...layer.repository.split("/"), layer.digest].map((s) => encodeURIComponent(s).replace(/%3A/gi, ":")).join("/");
}
