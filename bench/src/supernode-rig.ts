// A real supernode in front of a docker-registry on loopback holding the
// realistic image, converted: what a bench of one supernode's serving
// needs (supernode-serve.ts). Each `supernode` is a fresh `shoal supernode`
// process, preheated, with the image's lazy layers and their indexes as it
// serves them.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeIndexMembers, requireLazyLayers, type LayerIndex } from "@shoal/blockindex";
import { indexRoute, type LayerRef } from "@shoal/swarm";
import { freePort, pushLayout, startRegistry } from "@shoal/testkit";
import { DEFAULT_CLI, shoalCli } from "./shoal-cli.ts";
import { installExitHook, liveWorkDirs, removeWorkDir, stopProcess } from "./leftovers.ts";
import { realisticImage, withoutProxies } from "./setup.ts";

/** One lazy layer as a supernode serves it. */
export interface ServedLayer {
  ref: LayerRef;
  index: LayerIndex;
}

/** A running supernode, preheated. */
export interface RigSupernode {
  url: string;
  pid: number;
  layers: ServedLayer[];
  stop(): Promise<void>;
}

/** The registry with the image, and fresh supernodes in front of it. */
export interface SupernodeRig {
  supernode(name: string, args: readonly string[]): Promise<RigSupernode>;
  close(): Promise<void>;
}

/** Push and convert the realistic image to a registry on loopback; `cli`: another checkout's shoal. */
export async function startSupernodeRig(opts: { cli?: string; log: (s: string) => void }): Promise<SupernodeRig> {
  installExitHook();
  withoutProxies();
  const image = await realisticImage(opts.log);
  const reg = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), "shoal-bench-serve-"));
  liveWorkDirs.add(work);
  const { cliOk, daemon } = shoalCli(opts.cli ?? DEFAULT_CLI);
  const repo = "bench/realistic";
  const lazyRef = `${reg.host}/${repo}:v1-lazy`;
  await pushLayout(image.layoutDir, image.tag, `${reg.host}/${repo}:v1`);
  await cliOk(["convert", "--plain-http", `${reg.host}/${repo}:v1`, lazyRef]);

  const layersOf = async (url: string): Promise<ServedLayer[]> => {
    const manifest = (await (await fetch(`${reg.url}/v2/${repo}/manifests/v1-lazy`, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).json()) as { layers: Array<{ digest: string; annotations?: Record<string, string> }> };
    const infos = requireLazyLayers(manifest.layers, lazyRef);
    const layers: ServedLayer[] = [];
    for (const [k, d] of manifest.layers.entries()) {
      const ref = { registry: reg.host, repository: repo, digest: d.digest };
      const bytes = new Uint8Array(await (await fetch(`${url}${indexRoute(ref)}`)).arrayBuffer());
      layers.push({ ref, index: decodeIndexMembers(bytes, infos[k]!.location, { layer: d.digest }) });
    }
    return layers;
  };

  return {
    async supernode(name, args) {
      const host = "127.0.0.1";
      const port = await freePort();
      const url = `http://${host}:${port}`;
      const sn = await daemon([
        "supernode", "--root", join(work, name), "--listen", `${host}:${port}`, "--registries", reg.host, "--plain-http", "--log-level", "warn", ...args,
      ], {
        logFile: join(work, `${name}.log`), ready: { tcp: { host, port } }, timeoutMs: 60_000,
        ...(process.env.SNPROF ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${process.env.SNPROF}`] } : {}),
      });
      const stop = () => stopProcess(sn.child, 10_000);
      try {
        await cliOk(["preheat", "--supernode", url, "--plain-http", lazyRef]);
        return { url, pid: sn.child.pid!, layers: await layersOf(url), stop };
      } catch (err) {
        await stop();
        throw err;
      }
    },
    async close() {
      await reg.stop();
      await removeWorkDir(work, opts.log);
    },
  };
}
