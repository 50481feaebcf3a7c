/**
 * Pushing an OCI layout's tag to a plain-HTTP registry byte for byte with
 * fetch, for manifests skopeo cannot read from a layout (Docker schema2 media
 * types: skopeo's oci: transport only accepts OCI descriptors in index.json).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { readLayoutBlob, REF_NAME_ANNOTATION } from "./image-layout.ts";

/** A parsed "HOST[:PORT]/REPO(:TAG|@DIGEST)" reference. */
export interface PlainRef {
  host: string;
  repo: string;
  /** Tag or digest. */
  reference: string;
}

/** Parses "HOST[:PORT]/REPO[:TAG|@DIGEST]" (tag defaults to "latest"). */
export function parsePlainRef(ref: string): PlainRef {
  const slash = ref.indexOf("/");
  if (slash < 0) throw new Error(`reference ${ref} has no host`);
  const host = ref.slice(0, slash);
  let rest = ref.slice(slash + 1);
  let reference = "latest";
  const at = rest.indexOf("@");
  if (at >= 0) {
    reference = rest.slice(at + 1);
    rest = rest.slice(0, at);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon > rest.lastIndexOf("/")) {
      reference = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
    }
  }
  return { host, repo: rest, reference };
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

async function check(res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/**
 * Uploads the config and layer blobs of `tag` in layout `layoutDir` (skipping
 * blobs the registry has) and PUTs the manifest bytes unchanged with their
 * media type, over http://. Resolves with the manifest digest.
 */
export async function pushLayoutHttp(layoutDir: string, tag: string, destRef: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const { signal } = opts;
  const { host, repo, reference } = parsePlainRef(destRef);
  const base = `http://${host}/v2/${repo}`;
  const index = JSON.parse(await readFile(join(layoutDir, "index.json"), "utf8")) as { manifests: Descriptor[] };
  const desc = index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!desc) throw new Error(`tag ${tag} not in ${layoutDir}`);
  const manifestBytes = await readLayoutBlob(layoutDir, desc.digest, { signal });
  const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as { config: Descriptor; layers: Descriptor[] };
  for (const blob of [manifest.config, ...manifest.layers]) {
    const head = await fetch(`${base}/blobs/${blob.digest}`, { method: "HEAD", signal });
    if (head.ok) continue;
    const start = await check(await fetch(`${base}/blobs/uploads/`, { method: "POST", signal }), `start upload ${blob.digest}`);
    const location = new URL(start.headers.get("location") ?? "", `http://${host}`);
    location.searchParams.set("digest", blob.digest);
    const body = await readLayoutBlob(layoutDir, blob.digest, { signal });
    await check(await fetch(location, {
      method: "PUT", body, signal, headers: { "content-type": "application/octet-stream" },
    }), `upload ${blob.digest}`);
  }
  await check(await fetch(`${base}/manifests/${reference}`, {
    method: "PUT", body: manifestBytes, signal, headers: { "content-type": desc.mediaType },
  }), `put manifest ${reference}`);
  return desc.digest;
}
