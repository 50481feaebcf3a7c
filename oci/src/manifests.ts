/** Fetching, resolving and pushing manifests. */
import { DigestMismatchError, InvalidArgumentError, digestOf, isDigest, verifyDigest } from "@shoal/base";
import { repositoryScope } from "./authenticator.ts";
import { discard, headerValue } from "./body.ts";
import { apiPath, type ClientContext } from "./context.ts";
import { InvalidReferenceError, RegistryError, UnsupportedManifestError } from "./errors.ts";
import { isIndex, parseManifest, type ImageIndex, type ImageManifest, type Manifest } from "./manifest.ts";
import { MANIFEST_MEDIA_TYPES, stripMediaTypeParameters } from "./media-types.ts";
import { selectPlatform, type Platform } from "./platform.ts";
import { assertRepository, assertTag, manifestReference } from "./reference.ts";
import { describeRequest } from "./transport.ts";

/** What names a manifest: a repository plus a tag and/or digest (an `ImageReference` fits). */
export interface ManifestTarget {
  /** If present, must be the client's registry. */
  readonly registry?: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

/** A fetched manifest with the exact bytes its digest covers. */
export interface FetchedManifest<M extends Manifest = Manifest> {
  digest: string;
  mediaType: M["mediaType"];
  bytes: Uint8Array;
  manifest: M;
}

/** The result of `resolveImage`: the platform manifest, and the index it came from if any. */
export interface ResolvedImage extends FetchedManifest<ImageManifest> {
  index?: FetchedManifest<ImageIndex>;
}

function checkTarget(ctx: ClientContext, target: ManifestTarget): void {
  if (target.registry !== undefined && target.registry !== ctx.registry) {
    throw new InvalidArgumentError(`reference is for registry ${target.registry}, client is for ${ctx.registry}`);
  }
  assertRepository(target.repository);
}

/**
 * GETs a manifest by digest (if the target has one) or tag, accepting the OCI
 * and Docker schema 2 manifest and index types. At most `maxManifestSize`
 * bytes are read (`SHOAL_ERR_MANIFEST_TOO_LARGE` past that, connection
 * closed). The digest returned is the sha256 of the bytes; fetched by digest,
 * the bytes must match it (`DigestMismatchError`), and a registry's
 * `Docker-Content-Digest` that disagrees is also a mismatch.
 */
export async function getManifest(ctx: ClientContext, target: ManifestTarget, opts: { signal?: AbortSignal } = {}): Promise<FetchedManifest> {
  checkTarget(ctx, target);
  const ref = manifestReference(target);
  const url = ctx.url(apiPath(target.repository, `manifests/${ref}`));
  const limit = ctx.settings.maxManifestSize;
  const { headers, bytes } = await ctx.transport.fetchBytes(
    {
      method: "GET",
      url,
      headers: { accept: MANIFEST_MEDIA_TYPES.join(", ") },
      scope: repositoryScope(target.repository, ["pull"]),
      expect: [200],
      signal: opts.signal,
    },
    limit,
    () => new RegistryError("SHOAL_ERR_MANIFEST_TOO_LARGE", `${describeRequest("GET", url)}: manifest larger than ${limit} bytes`),
  );
  const what = `manifest ${target.repository}@${ref}`;
  let digest: string;
  if (target.digest !== undefined) {
    verifyDigest(what, bytes, target.digest);
    digest = target.digest;
  } else {
    digest = digestOf(bytes);
    const claimed = headerValue(headers["docker-content-digest"]);
    if (claimed !== undefined && claimed.startsWith("sha256:") && claimed !== digest) throw new DigestMismatchError(what, claimed, digest);
  }
  const manifest = parseManifest(bytes, headerValue(headers["content-type"]));
  return { digest, mediaType: manifest.mediaType, bytes, manifest };
}

/**
 * Resolves a reference to one platform's image manifest: fetches the
 * manifest; if it is an index, picks `platform` (default: this host, see
 * `selectPlatform`) and fetches that manifest by digest, checking its size
 * against the index entry. Throws `NoMatchingPlatformError` when the index
 * has no match and `UnsupportedManifestError` for an index inside an index.
 */
export async function resolveImage(ctx: ClientContext, target: ManifestTarget, opts: { platform?: Platform; signal?: AbortSignal } = {}): Promise<ResolvedImage> {
  const top = await getManifest(ctx, target, opts);
  if (!isIndex(top.manifest)) return top as FetchedManifest<ImageManifest>;
  const index = top as FetchedManifest<ImageIndex>;
  const desc = selectPlatform(index.manifest, opts.platform);
  const child = await getManifest(ctx, { repository: target.repository, digest: desc.digest }, opts);
  if (child.bytes.length !== desc.size) {
    throw new RegistryError("SHOAL_ERR_REGISTRY_PROTOCOL", `manifest ${target.repository}@${desc.digest}: ${child.bytes.length} bytes, index says ${desc.size}`);
  }
  if (isIndex(child.manifest)) throw new UnsupportedManifestError(child.mediaType, "index nested in an index");
  return { ...(child as FetchedManifest<ImageManifest>), index };
}

/**
 * PUTs manifest `bytes` with `mediaType` under a tag or digest and returns
 * the manifest's sha256 digest. Pushing under a digest requires that it be
 * the digest of `bytes`. Retried on transient failures (PUT is idempotent).
 */
export async function putManifest(ctx: ClientContext, repository: string, tagOrDigest: string, bytes: Uint8Array, mediaType: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  assertRepository(repository);
  const digest = digestOf(bytes);
  if (tagOrDigest.includes(":")) {
    if (!isDigest(tagOrDigest)) throw new InvalidReferenceError(tagOrDigest, "not a valid digest");
    verifyDigest(`manifest ${repository}@${tagOrDigest}`, bytes, tagOrDigest);
  } else {
    assertTag(tagOrDigest);
  }
  if (stripMediaTypeParameters(mediaType) === "") throw new InvalidArgumentError("putManifest: mediaType is required");
  const url = ctx.url(apiPath(repository, `manifests/${tagOrDigest}`));
  await ctx.transport.execute(
    {
      method: "PUT",
      url,
      headers: { "content-type": mediaType },
      body: () => bytes,
      scope: repositoryScope(repository, ["pull", "push"]),
      expect: [200, 201, 202],
      signal: opts.signal,
    },
    async (res) => {
      await discard(res.body);
      const claimed = headerValue(res.headers["docker-content-digest"]);
      if (claimed !== undefined && claimed.startsWith("sha256:") && claimed !== digest) {
        throw new DigestMismatchError(`manifest ${repository}:${tagOrDigest} as stored`, digest, claimed);
      }
    },
  );
  ctx.logger.debug({ repository, reference: tagOrDigest, digest }, "pushed manifest");
  return digest;
}
