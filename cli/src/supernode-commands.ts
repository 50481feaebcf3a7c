import { humanBytes } from "@shoal/base";
import type { Command } from "commander";
import { SUPERNODE_SETTINGS } from "./supernode-settings.ts";
import { settingsCommand, stopOnSignals } from "./daemon-command.ts";
import { progressLine } from "./progress.ts";

/** `shoal supernode`: the datacenter chunk cache, tracker and preheat API, in the foreground. */
export function registerSupernode(program: Command): void {
  const cmd = program.command("supernode").description("run a datacenter supernode in the foreground (chunk cache, tracker, preheat)");
  settingsCommand(cmd, SUPERNODE_SETTINGS, async (config) => {
    const { daemonLogger } = await import("./logger.ts");
    const { createSupernode } = await import("@shoal/supernode");
    const logger = daemonLogger(config.logLevel, "supernode");
    const self = config.advertise ?? `http://${config.listen.host}:${config.listen.port}`;
    const node = await createSupernode({
      root: config.root,
      listen: config.listen,
      plainHttp: config.plainHttp,
      ...(config.registries.includes("*") ? {} : { allowedRegistries: config.registries }),
      cacheSize: config.cacheSize,
      hotChunkBytes: config.hotChunks,
      apiThreads: config.apiThreads,
      backgroundSlots: config.backgroundSlots,
      trackerMaxPeers: config.trackerMaxPeers,
      trackerMaxHoldings: config.trackerMaxHoldings,
      trackerReporterAgeMs: config.trackerReporterAge,
      accessTtlMs: Math.max(1, config.accessTtl), // 0 in the init turns checks off; here it means ask every time
      maxPreheats: config.maxPreheats,
      spanSpacing: config.spanSpacing,
      ...(config.metricsListen ? { metricsListen: config.metricsListen } : {}),
      peers: config.peers.length > 0 ? config.peers : [self],
      self,
      ...(config.swarmKey ? {
        swarm: {
          swarmKey: await (await import("@shoal/p2p")).readSwarmKey(config.swarmKey),
          listen: [config.p2pListen],
          uploadRate: config.uploadRate,
          maxUploads: config.maxUploads,
        },
      } : {}),
    }, logger);
    stopOnSignals(logger, () => node.close());
  });
}

/** `shoal preheat`: pull a whole image into the supernodes before a peak, with progress. */
export function registerPreheat(program: Command): void {
  program
    .command("preheat")
    .description("fetch every chunk of a lazy image into the supernodes that own them (an unconverted image: its owners build each layer's seekable index, reading it whole), with this host's registry credentials (its docker config); exits 0 when done")
    .argument("<image>", "image reference (lazy or not)")
    .requiredOption("--supernode <urls>", "supernode base URLs, comma separated (every supernode of the datacenter)")
    .option("--platform <os/arch>", "platform of an index (default: this host's)")
    .option("--plain-http", "the image's registry speaks http:// (the supernodes must run with --plain-http too)")
    .action(async (image: string, opts: { supernode: string; platform?: string }) => {
      const { preheat } = await import("@shoal/swarm");
      const { DockerConfigCredentialStore, parseReference } = await import("@shoal/oci");
      const supernodes = opts.supernode.split(",").map((s) => s.trim()).filter(Boolean);
      // the host's credentials for the image's registry (its docker config), as the agent sends them
      const credentials = await new DockerConfigCredentialStore().get(parseReference(image).registry);
      const bar = progressLine(`preheat ${image}`);
      const result = await preheat({
        supernodes,
        image,
        ...(credentials ? { credentials } : {}),
        ...(opts.platform ? { platform: opts.platform } : {}),
        onProgress: (p: { bytesDone: number; bytesTotal: number }) => bar.update(p.bytesDone, p.bytesTotal),
      });
      const done = result as { chunksTotal?: number; bytesTotal?: number };
      bar.done(`done: ${done.chunksTotal ?? "?"} chunks, ${humanBytes(done.bytesTotal ?? 0)} in ${supernodes.length} supernode(s)`);
    });
}
