/** What the registry operations (manifests, blobs, uploads) share: one registry's transport and settings. */
import type { Logger } from "./logger.ts";
import type { RegistryTransport } from "./transport.ts";

/** Resolved settings of a `RegistryClient`. */
export interface ClientSettings {
  maxManifestSize: number;
  maxBufferedBlobSize: number;
  chunkedUploadThreshold: number;
  uploadChunkSize: number;
}

/** Shared state handed to the operation modules. */
export interface ClientContext {
  /** Registry name as in references (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  readonly transport: RegistryTransport;
  readonly logger: Logger;
  readonly settings: ClientSettings;
  /** Absolute URL for an API path like `/v2/a/b/blobs/sha256:...`. */
  url(path: string): URL;
}

/** `/v2/<repository>/<rest>` with the repository's slashes kept. */
export function apiPath(repository: string, rest: string): string {
  return `/v2/${repository}/${rest}`;
}
