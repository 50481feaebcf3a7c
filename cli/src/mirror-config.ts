// `shoal mirror-config ENGINE`: what containerd, podman, Docker or PouchContainer needs to pull through the agent's registry mirror.
import { InvalidArgumentError } from "@shoal/base";
import { Argument, Option, type Command } from "commander";
import { AGENT_SETTINGS } from "@shoal/agent/config";

/** Where each engine's configuration lives by default (`--config`). */
const DEFAULT_PLACES = {
  containerd: "/etc/containerd/certs.d",
  podman: "/etc/containers/registries.conf.d/shoal-mirror.conf",
  docker: "/etc/docker/daemon.json",
  pouch: "/etc/pouch/config.json",
} as const;

/** `shoal mirror-config`: print or write (merging) an engine's mirror configuration. */
export function registerMirrorConfig(program: Command): void {
  program
    .command("mirror-config")
    .description("print the configuration that makes an engine pull through the running agent's registry mirror (shoal agent --mirror-listen); --write merges it into the engine's files, keeping what is there")
    .addArgument(new Argument("<engine>", "the engine").choices(["containerd", "podman", "docker", "pouch"]))
    .addOption(new Option("--root <dir>", "agent state directory (the mirror's address is asked of its agent)").env("SHOAL_ROOT").default(AGENT_SETTINGS.root.default))
    .option("--mirror <url>", "the mirror's URL, instead of asking the agent")
    .option("--registry <host...>", "registries to mirror (containerd: also _default, for every other; podman: default docker.io; Docker and Pouch mirror only Docker Hub)")
    .option("--plain-http", "the registries themselves speak http:// (test registries)")
    .option("--config <path>", "containerd: the certs.d directory; podman: the registries.conf (drop-in) to write; docker, pouch: the JSON config file")
    .option("--write", "write the files (merging) instead of printing them")
    .action(async (engine: keyof typeof DEFAULT_PLACES, opts: { root: string; mirror?: string; registry?: string[]; plainHttp?: boolean; config?: string; write?: boolean }) => {
      const rp = await import("@shoal/registry-proxy");
      const { readFile, writeFile, mkdir, rename } = await import("node:fs/promises");
      const { dirname, join } = await import("node:path");
      const mirror = (opts.mirror ?? (await mirrorOfAgent(opts.root))).replace(/\/+$/, "");
      const mirrorHost = new URL(mirror).host;
      const place = opts.config ?? DEFAULT_PLACES[engine];
      const read = (path: string) => readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return undefined;
        throw new InvalidArgumentError(`cannot read ${path}: ${err.message}`);
      });
      const files: Array<{ path: string; content: string }> = [];
      if (engine === "containerd") {
        for (const r of [...(opts.registry ?? []), rp.CONTAINERD_DEFAULT_HOST]) {
          const path = join(place, r, "hosts.toml");
          files.push({ path, content: rp.containerdHostsToml(await read(path), r, mirror, opts.plainHttp === true) });
        }
      } else if (engine === "podman") {
        files.push({ path: place, content: rp.podmanRegistriesConf(opts.registry ?? ["docker.io"], mirrorHost, opts.plainHttp === true) });
      } else {
        const others = (opts.registry ?? []).filter((r) => r !== "docker.io");
        if (others.length > 0) throw new InvalidArgumentError(`${engine} mirrors only Docker Hub (references without a registry); ${others.join(", ")} cannot go through its registry-mirrors`);
        files.push({ path: place, content: rp.withRegistryMirror(await read(place), mirror) });
      }
      for (const f of files) {
        if (!opts.write) {
          process.stdout.write(`# ${f.path}\n${f.content}\n`);
          continue;
        }
        await mkdir(dirname(f.path), { recursive: true });
        await writeFile(`${f.path}.shoal-tmp`, f.content);
        await rename(`${f.path}.shoal-tmp`, f.path);
        process.stderr.write(`wrote ${f.path}\n`);
      }
      if (opts.write) process.stderr.write(engine === "containerd" ? "containerd reads certs.d at each pull (set config_path in its CRI registry config, or ctr --hosts-dir)\n" : `restart ${engine} to load it\n`);
    });
}

/** The mirror URL the agent at `root` serves, or a clear error. */
async function mirrorOfAgent(root: string): Promise<string> {
  const { AgentClient } = await import("@shoal/agent/client");
  const status = await new AgentClient({ root }).status();
  if (!status.mirror) throw new InvalidArgumentError(`the agent at ${root} serves no registry mirror: start it with --mirror-listen HOST:PORT`);
  return status.mirror;
}
