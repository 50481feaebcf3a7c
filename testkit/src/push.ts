/**
 * Moving OCI layouts to and from a registry with skopeo, and unpacking them
 * with umoci: the reference implementations shoal is compared against.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { run } from "./exec.ts";

/**
 * Pushes tag `tag` of OCI layout `layoutDir` to `destRef` ("HOST:PORT/REPO:TAG",
 * no transport prefix) over plain HTTP. Digests are preserved
 * (`--preserve-digests`: skopeo fails rather than rewrite the manifest, and
 * uncompressed layers are pushed uncompressed), so the registry serves the
 * layout's exact manifest digest; `creds` log in to the registry. Resolves
 * with skopeo's output.
 */
export async function pushLayout(layoutDir: string, tag: string, destRef: string, opts: { signal?: AbortSignal; creds?: { username: string; password: string } } = {}): Promise<string> {
  const { stdout } = await run("skopeo", [
    "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false", ...(opts.creds ? ["--dest-creds", `${opts.creds.username}:${opts.creds.password}`] : []),
    `oci:${layoutDir}:${tag}`, `docker://${destRef}`,
  ], opts.signal ? { signal: opts.signal } : {});
  return stdout;
}

/**
 * Pulls `ref` ("HOST:PORT/REPO:TAG" or "...@sha256:...", plain HTTP) into OCI
 * layout `dir` under `tag` (default: "latest"). Digests are preserved and
 * uncompressed layers stay uncompressed.
 */
export async function pullLayout(ref: string, dir: string, opts: { tag?: string; signal?: AbortSignal } = {}): Promise<string> {
  const { stdout } = await run("skopeo", [
    "copy", "--quiet", "--preserve-digests", "--src-tls-verify=false",
    "--dest-oci-accept-uncompressed-layers",
    `docker://${ref}`, `oci:${dir}:${opts.tag ?? "latest"}`,
  ], opts);
  return stdout;
}

/** Result of {@link umociUnpack}. */
export interface UnpackedBundle {
  bundleDir: string;
  /** `bundleDir`/rootfs: the image's merged filesystem. */
  rootfs: string;
}

/**
 * Runs `umoci unpack --image layoutDir:tag bundleDir` (as the current user;
 * as root owners, modes, devices and trusted.* xattrs are restored).
 * `bundleDir` must not exist yet. umoci verifies blob digests and diffIDs.
 * umoci creates the rootfs directory itself; its own mode/mtime come from
 * umoci, not from the image (unless a layer has a "./" entry).
 */
export async function umociUnpack(layoutDir: string, tag: string, bundleDir: string, opts: { signal?: AbortSignal } = {}): Promise<UnpackedBundle> {
  await run("umoci", ["unpack", "--image", `${layoutDir}:${tag}`, bundleDir], opts);
  return { bundleDir, rootfs: join(bundleDir, "rootfs") };
}

/** Removes a bundle or layout directory tree (no error if missing). */
export async function removeTree(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
