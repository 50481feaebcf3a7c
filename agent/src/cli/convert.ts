import { InvalidArgumentError, parseBytes } from "@shoal/base";
import type { Command } from "commander";
import { DEFAULT_CHUNK_SIZE } from "@shoal/blockindex";
import { cacheDir } from "./common.ts";
import { progressLine } from "./progress.ts";

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
      const { convertImage } = await import("../image/convert-image.ts");
      const { clientFor, imageArg } = await import("./registry-cli.ts");
      const { readStartupOrder } = await import("../image/startup-order.ts");
      const startupOrder = opts.startupOrder ? await readStartupOrder(opts.startupOrder) : undefined;
      const src = imageArg(srcArg);
      const dst = imageArg(dstArg);
      if (dst.digest) throw new InvalidArgumentError(`destination ${dstArg} must be a tag, not a digest`);
      const srcClient = clientFor(src, opts);
      const dstClient = dst.registry === src.registry ? srcClient : clientFor(dst, opts);
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
        await srcClient.close();
        if (dstClient !== srcClient) await dstClient.close();
      }
    });
}
