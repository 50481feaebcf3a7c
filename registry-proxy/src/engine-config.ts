/**
 * What each engine needs to pull through the mirror, as file contents:
 * containerd's `certs.d/<registry>/hosts.toml`, podman's and CRI-O's
 * `registries.conf` mirrors, and the `registry-mirrors` list of Docker's
 * `daemon.json` and PouchContainer's `config.json`. Merging never loses
 * what a file holds: a hosts.toml keeps every line (the mirror goes first
 * among its hosts, so it is tried first), a JSON file keeps every key.
 */
import { InvalidArgumentError } from "@shoal/base";
import { DOCKER_HUB_REGISTRY, registryApiHost } from "@shoal/oci";

/** The engines `shoal mirror-config` knows. */
export const ENGINES = ["containerd", "podman", "docker", "pouch"] as const;
export type Engine = (typeof ENGINES)[number];

/** containerd's name for the hosts.toml that applies to every registry without one of its own. */
export const CONTAINERD_DEFAULT_HOST = "_default";

/**
 * The hosts.toml of `registry` (or `_default`) with the mirror at
 * `mirrorUrl` as its first host, merged into `existing` when there is one.
 * `plainHttp`: the registry itself speaks http:// (its `server` line).
 */
export function containerdHostsToml(existing: string | undefined, registry: string, mirrorUrl: string, plainHttp = false): string {
  const block = `[host."${mirrorUrl}"]\n  capabilities = ["pull", "resolve"]\n`;
  if (existing === undefined || existing.trim() === "") {
    const server = registry === CONTAINERD_DEFAULT_HOST ? "" : `server = "${plainHttp ? "http" : "https"}://${registryApiHost(registry)}"\n\n`;
    return `# written by shoal mirror-config: pulls go through the shoal agent's mirror, then ${registry === CONTAINERD_DEFAULT_HOST ? "the registry itself" : "the server"}\n${server}${block}`;
  }
  if (existing.includes(`[host."${mirrorUrl}"]`)) return existing;
  const lines = existing.split("\n");
  const first = lines.findIndex((l) => /^\s*\[host\./.test(l));
  if (first < 0) return `${existing.replace(/\n*$/, "\n")}\n${block}`;
  return [...lines.slice(0, first), ...block.split("\n"), ...lines.slice(first)].join("\n");
}

/**
 * A registries.conf (a drop-in, or a whole file) that sends pulls of each of
 * `registries` through the mirror at `mirrorHost` (`HOST:PORT`, plain
 * http), the registry itself after it. The registry goes in the mirror's
 * path, its port written `__`.
 */
export function podmanRegistriesConf(registries: readonly string[], mirrorHost: string, plainHttp = false): string {
  const out = ["# written by shoal mirror-config: pulls go through the shoal agent's mirror, then the registry itself"];
  for (const r of registries) {
    const prefix = r === DOCKER_HUB_REGISTRY ? "docker.io" : r;
    out.push("", "[[registry]]", `prefix = "${prefix}"`, `location = "${prefix}"`, ...(plainHttp ? ["insecure = true"] : []));
    out.push("", "[[registry.mirror]]", `location = "${mirrorHost}/${r.replace(":", "__")}"`, "insecure = true");
  }
  return `${out.join("\n")}\n`;
}

/** `existing` JSON (Docker's daemon.json, Pouch's config.json) with `mirrorUrl` first in its `registry-mirrors`. */
export function withRegistryMirror(existing: string | undefined, mirrorUrl: string): string {
  let config: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== "") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(existing);
    } catch (err) {
      throw new InvalidArgumentError(`the engine's config is not JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidArgumentError("the engine's config is not a JSON object");
    config = parsed as Record<string, unknown>;
  }
  const had = config["registry-mirrors"];
  if (had !== undefined && (!Array.isArray(had) || had.some((m) => typeof m !== "string"))) throw new InvalidArgumentError("its registry-mirrors is not a list of URLs");
  const mirrors = (had as string[] | undefined) ?? [];
  config["registry-mirrors"] = [mirrorUrl, ...mirrors.filter((m) => m.replace(/\/+$/, "") !== mirrorUrl)];
  return `${JSON.stringify(config, null, 2)}\n`;
}
