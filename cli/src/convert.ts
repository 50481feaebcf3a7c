import { InvalidArgumentError, parseBytes } from "@shoal/base";
import type { Command } from "commander";
import { DEFAULT_CHUNK_SIZE } from "@shoal/blockindex/constants";
import type { StartupOrder } from "@shoal/blockindex";
import { readFile } from "node:fs/promises";
import { cacheDir } from "./common.ts";
import { progressLine } from "./progress.ts";

/** Read and check a startup order file (`shoal startup-order` output). */
async function readStartupOrder(path: string): Promise<StartupOrder> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`cannot read startup order ${path}: ${(err as Error).message}`, { cause: err });
  }
  const { parseStartupOrder } = await import("@shoal/blockindex");
  return parseStartupOrder(doc, path);
}

/** `shoal convert SRC DST`. */
export function registerConvert(program: Command): void {
  program
    .command("convert")
    .description("convert an image (every platform of an index) into a lazy image and push it; prints the pushed digest last")
    .argument("<src>", "source image reference, e.g. registry.example/app:1.0")
    .argument("<dst>", "destination image reference (tag), e.g. registry.example/app:1.0-lazy")
    .option("--plain-http", "use http:// instead of https:// for both registries")
    .option("--chunk-size <bytes>", "uncompressed bytes per chunk (k/M suffixes allowed)", String(DEFAULT_CHUNK_SIZE))
    .option("--no-cache", "convert every layer again, even when a previous conversion is still in the destination")
    .option("--startup-order <file>", "embed the startup chunks recorded by an agent (shoal startup-order) so every host prefetches them at mount")
    .action(async (srcArg: string, dstArg: string, opts: { plainHttp?: boolean; chunkSize: string; cache: boolean; startupOrder?: string }) => {
      // loaded here, not at start-up, so commands that do not need them start fast
      const { convertImage } = await import("@shoal/convert");
      const { registryClients } = await import("./registry-cli.ts");
      const { parseReference } = await import("@shoal/oci");
            const startupOrder = opts.startupOrder ? await readStartupOrder(opts.startupOrder) : undefined;
      const src = parseReference(srcArg);
      const dst = parseReference(dstArg);
      if (dst.digest) throw new InvalidArgumentError(`destination ${dstArg} must be a tag, not a digest`);
      const clients = registryClients(opts);
      const srcClient = clients.client(src.registry);
      const dstClient = clients.client(dst.registry);
      try {
        const result = await convertImage({ client: srcClient, ref: src }, { client: dstClient, ref: dst }, {
          chunkSize: parseBytes(opts.chunkSize),
          ...(startupOrder ? { startupOrder } : {}),
          ...(opts.cache ? { cacheDir: `${cacheDir()}/convert` } : {}),
          progress: (label) => progressLine(label),
        });
        process.stderr.write(`pushed ${dst.toString()}: ${result.converted} layers converted, ${result.reused} reused\n`);
        process.stdout.write(`${result.digest}\n`);
      } finally {
        await clients.close();
      }
    });
}
