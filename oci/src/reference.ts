/**
 * Image references, parsed with Docker's normalisation rules
 * (distribution/reference `ParseNormalizedNamed`).
 */
import { DOCKER_HUB_API_HOST, DOCKER_HUB_REGISTRY } from "./constants.ts";
import { InvalidReferenceError } from "./errors.ts";

/** A parsed, normalised image reference. */
export interface ImageReference {
  /** Registry host, with port if any: `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry: `library/alpine`, `team/app`. */
  readonly repository: string;
  /** Tag; `latest` when the input named neither tag nor digest. */
  readonly tag?: string;
  /** Digest; when both tag and digest are given the digest identifies the content. */
  readonly digest?: string;
  /** Canonical form `registry/repository[:tag][@digest]`. */
  toString(): string;
}

const ALNUM = "[a-z0-9]+";
const SEPARATOR = "(?:[._]|__|-+)";
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const REPOSITORY_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const HOST_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]{1,5})?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_SHAPE_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX64_RE = /^[a-f0-9]{64}$/;
const MAX_NAME_LENGTH = 255;

class ParsedReference implements ImageReference {
  readonly registry: string;
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;

  constructor(registry: string, repository: string, tag: string | undefined, digest: string | undefined) {
    this.registry = registry;
    this.repository = repository;
    if (tag !== undefined) this.tag = tag;
    if (digest !== undefined) this.digest = digest;
  }

  toString(): string {
    return `${this.registry}/${this.repository}${this.tag !== undefined ? `:${this.tag}` : ""}${this.digest !== undefined ? `@${this.digest}` : ""}`;
  }
}

/**
 * Parses `[registry/]repository[:tag][@digest]` with Docker's rules: a first
 * path component is a registry only if it contains `.` or `:`, is
 * `localhost`, or has upper-case letters; otherwise the registry is
 * `docker.io`, where one-component names get `library/`. `index.docker.io`
 * becomes `docker.io`. With neither tag nor digest the tag is `latest`.
 * Throws `InvalidReferenceError` for anything else.
 */
export function parseReference(s: string): ImageReference {
  if (typeof s !== "string" || s.length === 0) throw new InvalidReferenceError(String(s), "empty reference");
  if (HEX64_RE.test(s)) throw new InvalidReferenceError(s, "cannot specify 64-byte hexadecimal strings");

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    checkReferenceDigest(s, digest);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(s, `invalid tag ${JSON.stringify(tag)}`);
  }

  let registry = DOCKER_HUB_REGISTRY;
  let repository = rest;
  const slash = rest.indexOf("/");
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (/[.:]/.test(first) || first === "localhost" || first.toLowerCase() !== first) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry === "index.docker.io") registry = DOCKER_HUB_REGISTRY;
  if (!HOST_RE.test(registry)) throw new InvalidReferenceError(s, `invalid registry host ${JSON.stringify(registry)}`);
  if (registry === DOCKER_HUB_REGISTRY && !repository.includes("/")) repository = `library/${repository}`;
  checkRepository(s, repository);
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw new InvalidReferenceError(s, `repository name longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = "latest";
  return new ParsedReference(registry, repository, tag, digest);
}

/** Throws `InvalidReferenceError` unless `repository` is a valid repository path (`a/b-c/d_e`). */
export function assertRepository(repository: string): void {
  checkRepository(repository, repository);
}

/** Throws `InvalidReferenceError` unless `tag` is a valid tag. */
export function assertTag(tag: string): void {
  if (!TAG_RE.test(tag)) throw new InvalidReferenceError(tag, "invalid tag");
}

function checkRepository(input: string, repository: string): void {
  if (repository.length === 0) throw new InvalidReferenceError(input, "empty repository name");
  if (repository.toLowerCase() !== repository) throw new InvalidReferenceError(input, "repository name must be lowercase");
  if (!REPOSITORY_RE.test(repository)) throw new InvalidReferenceError(input, `invalid repository name ${JSON.stringify(repository)}`);
}

function checkReferenceDigest(input: string, digest: string): void {
  if (!DIGEST_SHAPE_RE.test(digest)) throw new InvalidReferenceError(input, "invalid digest format");
  const [algorithm, hex = ""] = digest.split(":");
  if (algorithm === "sha256") {
    if (!/^[a-f0-9]{64}$/.test(hex)) throw new InvalidReferenceError(input, "sha256 digest must be 64 lowercase hex digits");
  } else if (algorithm === "sha512") {
    if (!/^[a-f0-9]{128}$/.test(hex)) throw new InvalidReferenceError(input, "sha512 digest must be 128 lowercase hex digits");
  } else {
    throw new InvalidReferenceError(input, `unsupported digest algorithm ${JSON.stringify(algorithm)}`);
  }
}

/** Builds a reference from parts (validated as `parseReference` would). */
export function makeReference(parts: { registry: string; repository: string; tag?: string; digest?: string }): ImageReference {
  const s = `${parts.registry}/${parts.repository}${parts.tag !== undefined ? `:${parts.tag}` : ""}${parts.digest !== undefined ? `@${parts.digest}` : ""}`;
  const ref = parseReference(s);
  if (ref.registry !== parts.registry || ref.repository !== parts.repository) {
    throw new InvalidReferenceError(s, "registry or repository is not in normalised form");
  }
  return ref;
}

/**
 * The host that serves the registry API for a reference's `registry`:
 * `docker.io` → `registry-1.docker.io`; any other registry is its own host.
 */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB_REGISTRY || registry === "index.docker.io" ? DOCKER_HUB_API_HOST : registry;
}

/** What to put after `/manifests/` for a reference: its digest if it has one, else its tag. */
export function manifestReference(ref: { tag?: string; digest?: string }): string {
  const r = ref.digest ?? ref.tag;
  if (r === undefined) throw new InvalidReferenceError(String(ref), "reference has neither tag nor digest");
  return r;
}
