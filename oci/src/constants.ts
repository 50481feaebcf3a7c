/** Defaults for `RegistryClient` settings. Every one can be overridden in `init`. */

/** Largest manifest or index shoal reads: 4 MiB, as containerd and Distribution. */
export const DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

/** Largest blob `getBlob` buffers in memory when the caller names no limit: 16 MiB. */
export const DEFAULT_MAX_BUFFERED_BLOB_SIZE = 16 * 1024 * 1024;

/** Attempts per request (first try included) before giving up as unavailable. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** Total time budget for one request's retries, in milliseconds. */
export const DEFAULT_MAX_RETRY_TIME_MS = 30_000;
/** Longest wait for a registry's response headers, or between two pieces of its body, ms (undici's own is 300 s). */
export const DEFAULT_RESPONSE_TIMEOUT_MS = 20_000;

/** First backoff delay in milliseconds; doubles each attempt (with jitter). */
export const DEFAULT_RETRY_BASE_DELAY_MS = 200;

/** Upper bound on a single backoff delay, in milliseconds. */
export const DEFAULT_RETRY_MAX_DELAY_MS = 5_000;

/** Blobs larger than this are uploaded in chunks (PATCH); smaller in one PUT. */
export const DEFAULT_CHUNKED_UPLOAD_THRESHOLD = 64 * 1024 * 1024;

/** Size of each PATCH in a chunked upload. */
export const DEFAULT_UPLOAD_CHUNK_SIZE = 16 * 1024 * 1024;

/** Lifetime assumed for a bearer token whose response carries no `expires_in` (seconds). */
export const DEFAULT_TOKEN_EXPIRES_IN_S = 60;

/** A token is dropped this many milliseconds before it expires, for clock skew and latency. */
export const TOKEN_EXPIRY_MARGIN_MS = 5_000;

/** Redirects followed per request (registries redirect blobs to storage). */
export const MAX_REDIRECTS = 5;

/** Bytes of an error response body read to extract the registry's error JSON. */
export const MAX_ERROR_BODY_SIZE = 64 * 1024;

/** The registry name Docker uses for Docker Hub in references. */
export const DOCKER_HUB_REGISTRY = "docker.io";

/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** `User-Agent` sent with every request. */
export const USER_AGENT = "shoal/0.1";

/** The public registries: the default allow-list of what a supernode or an agent's mirror may reach. */
export const PUBLIC_REGISTRIES: readonly string[] = ["docker.io", "registry-1.docker.io", "ghcr.io", "quay.io", "registry.k8s.io", "gcr.io", "mcr.microsoft.com", "public.ecr.aws"];
