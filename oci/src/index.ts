/**
 * @shoal/oci — OCI image references, manifests, registry auth and the
 * registry client.
 */
export * from "./errors.ts";
export * from "./constants.ts";
export type { Logger } from "./logger.ts";
export { noopLogger } from "./logger.ts";
export type { ImageReference } from "./reference.ts";
export { parseReference, makeReference, registryApiHost, manifestReference, assertRepository, assertTag } from "./reference.ts";
export * from "./media-types.ts";
export type { Descriptor, ImageManifest, ImageIndex, Manifest } from "./manifest.ts";
export { parseManifest, isIndex } from "./manifest.ts";
export type { Platform } from "./platform.ts";
export { hostPlatform, parsePlatform, formatPlatform, selectPlatform } from "./platform.ts";
export type { AuthChallenge, BearerChallenge, BasicChallenge } from "./auth.ts";
export { parseWwwAuthenticate } from "./auth.ts";
export type { Credentials, CredentialStore, DockerConfigCredentialStoreInit } from "./credentials.ts";
export { anonymousCredentials, staticCredentials, credentialsFromDockerConfig, dockerConfigPath, DockerConfigCredentialStore } from "./credentials.ts";
export { repositoryScope } from "./authenticator.ts";
export type { RetryOptions } from "./retry.ts";
export { backoffDelay, isRetryableStatus, isRetryableNetworkError, parseRetryAfter } from "./retry.ts";
export type { RegistryClientComponents, RegistryClientInit } from "./client.ts";
export { RegistryClient } from "./client.ts";
export type { ManifestTarget, FetchedManifest, ResolvedImage } from "./manifests.ts";
export type { OpenBlob, RangeOptions } from "./blobs.ts";
export { parseContentRange } from "./blobs.ts";
export { readResponseUpTo } from "./body.ts";
export type { BlobSource, PushBlobOptions, PushBlobResult } from "./upload.ts";
export { RegistryClientPool, MAX_CREDENTIAL_CLIENTS, type RegistryClients, type RegistryClientPoolInit } from "./client-pool.ts";
