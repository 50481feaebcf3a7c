// `shoal pull` and `shoal containerd-config`: shoal as containerd's remote snapshotter.
import { InvalidArgumentError } from "@shoal/base";
import { Option, type Command } from "commander";
import { AGENT_SETTINGS } from "@shoal/agent/config";

const DEFAULT_ADDRESS = "/run/containerd/containerd.sock";
/** The containerd namespace CRI keeps its images in. */
const CRI_NAMESPACE = "k8s.io";

const addressOption = () => new Option("--address <socket>", "containerd's gRPC socket").env("CONTAINERD_ADDRESS").default(DEFAULT_ADDRESS);

/** `shoal pull IMAGE`: through containerd's CRI plugin, which unpacks through the shoal snapshotter. */
export function registerPull(program: Command): void {
  program
    .command("pull")
    .description("pull an image through containerd's CRI plugin (as kubelet does): with the shoal snapshotter configured, lazy layers are mounted, not downloaded; then ctr -n k8s.io run --snapshotter shoal")
    .argument("<image>", "image reference")
    .addOption(addressOption())
    .addOption(new Option("--namespace <ns>", "containerd namespace (CRI keeps images in k8s.io)").default(CRI_NAMESPACE))
    .action(async (image: string, opts: { address: string; namespace: string }) => {
      if (opts.namespace !== CRI_NAMESPACE) {
        throw new InvalidArgumentError(`shoal pull goes through containerd's CRI plugin, which keeps images in the ${CRI_NAMESPACE} namespace, not ${JSON.stringify(opts.namespace)}`);
      }
      const { parseReference, credentialsFromDockerConfig, dockerConfigPath } = await import("@shoal/oci");
      const { CriImages } = await import("@shoal/snapshotter");
      const { readFile } = await import("node:fs/promises");
      const ref = parseReference(image);
      const config = await readFile(dockerConfigPath(), "utf8").then((t) => JSON.parse(t) as unknown, () => undefined);
      const auth = config === undefined ? undefined : credentialsFromDockerConfig(config, ref.registry);
      const cri = new CriImages({ address: opts.address });
      const started = performance.now();
      try {
        const id = await cri.pull(ref.toString(), auth ? { auth } : {});
        process.stdout.write(`pulled ${ref.toString()} (${id}) in ${((performance.now() - started) / 1000).toFixed(2)} s; run it with: ctr -n ${CRI_NAMESPACE} run --snapshotter shoal ${ref.toString()} NAME\n`);
      } finally {
        cri.close();
      }
    });
}

/** The containerd configuration that makes shoal its remote snapshotter, as TOML tables. */
export function containerdConfig(socket: string, version: 2 | 3): Record<string, unknown> {
  const proxy = { proxy_plugins: { shoal: { type: "snapshot", address: socket } } };
  if (version === 2) {
    return {
      version: 2,
      ...proxy,
      plugins: { "io.containerd.grpc.v1.cri": { containerd: { snapshotter: "shoal", disable_snapshot_annotations: false } } },
    };
  }
  return {
    version: 3,
    ...proxy,
    plugins: {
      "io.containerd.cri.v1.images": { snapshotter: "shoal", disable_snapshot_annotations: false },
      "io.containerd.transfer.v1.local": { unpack_config: [{ platform: `linux/${process.arch === "x64" ? "amd64" : process.arch}`, snapshotter: "shoal" }] },
    },
  };
}

/** `to` with every table of `from` merged in (from wins for plain values; nothing of `to` is lost). */
export function mergeToml(to: Record<string, unknown>, from: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...to };
  for (const [k, v] of Object.entries(from)) {
    const cur = out[k];
    const isTable = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Date);
    out[k] = isTable(cur) && isTable(v) ? mergeToml(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** `shoal containerd-config`: print (or merge into a config file) what containerd needs to use shoal. */
export function registerContainerdConfig(program: Command): void {
  program
    .command("containerd-config")
    .description("print the containerd configuration (proxy plugin, CRI snapshotter) that makes shoal containerd's snapshotter; --write merges it into a config file, keeping what is there")
    .addOption(new Option("--root <dir>", "agent state directory").env("SHOAL_ROOT").default(AGENT_SETTINGS.root.default))
    .addOption(new Option("--socket <path>", "the agent's snapshotter socket (default ROOT/snapshotter.sock)").env("SHOAL_SNAPSHOTTER_LISTEN"))
    .addOption(new Option("--config-version <n>", "containerd config version: 2 for containerd 1.x, 3 for 2.x").choices(["2", "3"]).default("2"))
    .option("--write <file>", "merge into this containerd config file (created if missing) instead of printing")
    .action(async (opts: { root: string; socket?: string; configVersion: "2" | "3"; write?: string }) => {
      const { parse, stringify } = await import("smol-toml");
      const { join } = await import("node:path");
      const version = Number(opts.configVersion) as 2 | 3;
      const stanza = containerdConfig(opts.socket || join(opts.root, "snapshotter.sock"), version);
      if (!opts.write) {
        process.stdout.write(`${stringify(stanza)}\n`);
        return;
      }
      const { readFile, rename, writeFile } = await import("node:fs/promises");
      let existing: Record<string, unknown> = {};
      const text = await readFile(opts.write, "utf8").catch((err: NodeJS.ErrnoException) => {
        if (err.code === "ENOENT") return "";
        throw new InvalidArgumentError(`cannot read ${opts.write}: ${err.message}`);
      });
      try {
        existing = text ? (parse(text) as Record<string, unknown>) : {};
      } catch (err) {
        throw new InvalidArgumentError(`${opts.write} is not TOML: ${(err as Error).message}`);
      }
      const had = existing.version;
      if (had !== undefined && had !== version) throw new InvalidArgumentError(`${opts.write} is a version ${String(had)} config; pass --config-version ${String(had)}`);
      const merged = mergeToml(existing, stanza);
      await writeFile(`${opts.write}.shoal-tmp`, `${stringify(merged)}\n`);
      await rename(`${opts.write}.shoal-tmp`, opts.write);
      process.stderr.write(`merged shoal's snapshotter into ${opts.write}; restart containerd to load it\n`);
    });
}
