// Public surface of @shoal/registry-proxy: the host's registry mirror for engines that pull whole images.
export { RegistryMirror, type MirrorComponents, type MirrorInit, type MirrorObserver, type LocalBlobs } from "./mirror.ts";
export { parseMirrorRequest, type MirrorRequest } from "./mirror-request.ts";
export { sendVerified, type BlobSource, type SendReport } from "./verified-send.ts";
export { ORIGIN_HEADERS_TIMEOUT_MS } from "./origin.ts";
export { ENGINES, CONTAINERD_DEFAULT_HOST, containerdHostsToml, podmanRegistriesConf, withRegistryMirror, type Engine } from "./engine-config.ts";
