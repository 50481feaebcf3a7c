import { humanBytes } from "@shoal/base";
import { Option, type Command } from "commander";
import { AGENT_SETTINGS } from "@shoal/agent/config";
import { AgentClient } from "@shoal/agent/client";
import { settingsCommand, stopOnSignals } from "./daemon-command.ts";

const DEFAULT_ROOT = AGENT_SETTINGS.root.default;

const rootOption = () => new Option("--root <dir>", "agent state directory").env("SHOAL_ROOT").default(DEFAULT_ROOT);

/** `shoal agent`: the per-host daemon, in the foreground. Settings: flags, then SHOAL_* env, then --config FILE, then defaults. */
export function registerAgent(program: Command): void {
  const cmd = program.command("agent").description("run the per-host agent in the foreground (lazy mounts, chunk store, prefetch)");
  settingsCommand(cmd, AGENT_SETTINGS, async (config) => {
    const { daemonLogger } = await import("./logger.ts");
    const { createAgent } = await import("@shoal/agent");
    const logger = daemonLogger(config.logLevel, "agent");
    const agent = await createAgent(config, logger, { keeperCommand: [process.execPath, ...process.execArgv, process.argv[1]!, "fuse-keeper"] });
    stopOnSignals(logger, () => agent.close());
    void agent.failed.then((err) => {
      logger.fatal({ err: err.message }, "the agent cannot serve any more; exiting (a restart restores its mounts)");
      void agent.close().finally(() => process.exit(1));
    });
  });
}

/** `shoal mount`, `shoal umount`, `shoal status`: talk to the agent. */
export function registerMountCommands(program: Command): void {
  program
    .command("mount")
    .description("mount an image's root filesystem read-only and lazily (fetches manifest, config and indexes only)")
    .argument("<image>", "lazy image reference")
    .argument("<mountpoint>", "existing empty directory (not a system directory, not inside the agent's root or another shoal mount)")
    .option("--force", "mount over a directory that is not empty (its entries are hidden until the image is unmounted)")
    .addOption(rootOption())
    .action(async (image: string, mountpoint: string, opts: { root: string; force?: boolean }) => {
      const r = await new AgentClient({ root: opts.root }).mount(image, mountpoint, { force: opts.force === true });
      process.stdout.write(`mounted ${image} (${r.digest}) at ${r.mountpoint}: ${r.layers} layers, pulled in ${(r.pullMs / 1000).toFixed(3)} s, ${humanBytes(r.bytesFetched)} fetched\n`);
    });
  program
    .command("umount")
    .description("unmount an image mounted by shoal mount")
    .argument("<mountpoint>", "the mountpoint")
    .addOption(rootOption())
    .action(async (mountpoint: string, opts: { root: string }) => {
      await new AgentClient({ root: opts.root }).unmount(mountpoint);
    });
  program
    .command("startup-order")
    .description("print (JSON) the chunks the image mounted at MOUNTPOINT read at startup, for shoal convert --startup-order")
    .argument("<mountpoint>", "a shoal mount whose startup window has passed")
    .addOption(rootOption())
    .action(async (mountpoint: string, opts: { root: string }) => {
      const order = await new AgentClient({ root: opts.root }).startupOrder(mountpoint);
      process.stdout.write(`${JSON.stringify(order)}\n`);
    });
  program
    .command("status")
    .description("images, mounts, bytes fetched per source, prefetch progress, and the status page's address")
    .addOption(rootOption())
    .option("--json", "print JSON")
    .action(async (opts: { root: string; json?: boolean }) => {
      const s = await new AgentClient({ root: opts.root }).status();
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
        return;
      }
      const lines = [`agent root ${s.root}`, `store: ${s.store.chunks} chunks, ${humanBytes(s.store.bytes)} of ${humanBytes(s.store.capacityBytes)}`];
      for (const [src, t] of Object.entries(s.sources)) lines.push(`source ${src}: ${t.chunks} chunks, ${humanBytes(t.bytes)}`);
      if (s.hedges > 0) lines.push(`hedged fetches: ${s.hedges}`);
      lines.push(`layers: ${s.layers.mode} mode${s.layers.mode === "block" ? ` (${s.layers.block} as erofs, ${s.layers.local} of them from local files)` : ""}; FUSE requests answered ${s.layers.requests}, of them reads ${s.layers.reads}`);
      for (const img of s.images) {
        const p = img.prefetch;
        lines.push(`image ${img.image} (${img.digest.slice(0, 19)}), ${img.layers} layers, ${img.chunksLocal}/${img.chunksTotal} chunks here${p ? `, prefetch ${p.chunksDone}/${p.chunksTotal} chunks (${((100 * p.bytesDone) / Math.max(1, p.bytesTotal)).toFixed(0)}%)${p.finished ? (p.inflated ? " done" : " done, inflating") : ""}` : ""}`);
        if (p && img.startup) {
          const from = { local: "the order recorded on this host", fleet: "the fleet's startup trace (from the supernodes)", image: "the order the image carries", none: "none known" }[img.startup];
          lines.push(`  startup chunks: ${p.startupChunks}, from ${from}`);
        }
        for (const l of img.seekable ?? []) {
          const from = l.index === "local" ? "index built here from a full read: not lazy" : `index from the ${l.index}`;
          lines.push(`  ordinary layer ${l.layer.slice(0, 19)}: ${from}, audit ${l.audit}`);
        }
      }
      for (const m of s.mounts) lines.push(`mount ${m.mountpoint} <- ${m.image}`);
      if (s.p2p) {
        lines.push(`peer ${s.p2p.peerId}: ${s.p2p.connected} connected, ${humanBytes(s.p2p.bytesUploaded)} uploaded`);
        for (const p of s.p2p.peers.slice(0, 10)) lines.push(`  with ${p.peerId}: ${humanBytes(p.bytesUp)} up, ${humanBytes(p.bytesDown)} down`);
      }
      if (s.page) lines.push(`status page: ${s.page}`);
      process.stdout.write(`${lines.join("\n")}\n`);
    });
}
