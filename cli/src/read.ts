import { InvalidArgumentError, humanBytes } from "@shoal/base";
import type { Command } from "commander";
import type { Chunk, LayerReader, MergedNode, MergedTree, TarEntry } from "@shoal/blockindex";
import type { RegistryOptions } from "./common.ts";

interface ReadOptions extends RegistryOptions {
  stats?: boolean;
  /** Supernode URLs: seekable indexes of unconverted layers, and their spans, from them. */
  supernode?: string;
}

/** An image opened for reading through its indexes, counting what it fetched from the registry. */
interface ReadableImage {
  tree: MergedTree;
  /** A path as given on the command line, as the tree names it. */
  normalize(path: string): string;
  /** A reader for layer `i`: chunks from the registry, verified. */
  reader(i: number): LayerReader;
}

async function withImage(imageText: string, opts: ReadOptions, fn: (img: ReadableImage) => Promise<void>): Promise<void> {
  const { ShoalError } = await import("@shoal/base");
  const { loadWindow, openImage, LocalSeekableIndexSource, RegistryIndexSource, RegistrySource, SupernodeSource } = await import("@shoal/fetch");
  const { SupernodeSet } = await import("@shoal/swarm");
  const { chunkMatches, LayerReader, MergedTree, normalizeUserPath } = await import("@shoal/blockindex");
  const { registryClients } = await import("./registry-cli.ts");
  const { parseReference } = await import("@shoal/oci");
  const ref = parseReference(imageText);
  const clients = registryClients(opts);
  try {
    // unconverted layers: a seekable index from the supernodes (spans then from their block cache), else built here from a full read
    const urls = (opts.supernode ?? "").split(",").map((u) => u.trim()).filter((u) => u !== "");
    const supernodes = urls.length > 0 ? new SupernodeSource({ supernodes: new SupernodeSet({ urls }) }) : undefined;
    // without a supernode an unconverted image is refused rather than read whole behind the user's back
    const img = await openImage(clients, ref, [...(supernodes ? [supernodes] : []), new RegistryIndexSource({ clients })], {
      ...(supernodes ? { seekable: [supernodes, new LocalSeekableIndexSource({ clients })] } : {}),
    });
    const stats = { requests: img.layers.length, bytes: img.registryIndexBytes };
    const origin = new RegistrySource({ clients });
    const source = {
      fetchChunks: async (layer: (typeof img.layers)[number], first: number, last: number, o: { signal: AbortSignal }) => {
        if (!supernodes) return origin.fetchChunks(layer, first, last, o);
        // a span from the supernode that does not match its digest (or does not come) comes from the origin
        const got = await supernodes.fetchChunks(layer, first, last, o).catch(() => undefined);
        if (got && got.every((b, k) => chunkMatches(layer.index.chunk(first + k), b))) return got;
        return origin.fetchChunks(layer, first, last, o);
      },
    };
    await fn({
      tree: MergedTree.build(img.layers.map((l) => l.index)),
      normalize: normalizeUserPath,
      reader(i) {
        const layer = img.layers[i]!;
        const windows = layer.windows;
        // windows of seekable spans come apart from them (counted with the bytes fetched)
        if (windows) {
          layer.windows = async (ref, o) => {
            const w = await windows(ref, o);
            stats.requests++;
            stats.bytes += w.length;
            return w;
          };
        }
        const noDerive = () => Promise.reject(new ShoalError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `a checkpoint window of ${layer.digest} is not available`));
        const chunks = {
          async fetchChunk(c: Chunk, o: { signal?: AbortSignal } = {}) {
            await loadWindow(layer, c, noDerive, o);
            const [bytes] = await source.fetchChunks(layer, c.index, c.index, { signal: o.signal ?? new AbortController().signal });
            stats.requests++;
            stats.bytes += bytes!.length;
            return bytes!;
          },
        };
        return new LayerReader({ index: layer.index, source: chunks }, { layer: layer.digest });
      },
    });
    if (opts.stats) {
      const total = img.resolved.manifest.layers.reduce((s, l) => s + l.size, 0);
      process.stderr.write(`fetched ${humanBytes(stats.bytes)} in ${stats.requests} range requests (${((100 * stats.bytes) / Math.max(1, total)).toFixed(2)}% of the image's ${humanBytes(total)})\n`);
    }
  } finally {
    await clients.close();
  }
}

const TYPE_CHAR: Record<TarEntry["type"], string> = { file: "-", hardlink: "-", symlink: "l", chardev: "c", blockdev: "b", dir: "d", fifo: "p" };

/** `drwxr-xr-x`-style mode string, with setuid/setgid/sticky. */
export function modeString(e: TarEntry): string {
  const m = e.mode;
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? "x" : "-"}`;
  return TYPE_CHAR[e.type] + rwx(m >> 6, (m & 0o4000) !== 0, "s") + rwx(m >> 3, (m & 0o2000) !== 0, "s") + rwx(m, (m & 0o1000) !== 0, "t");
}

function line(node: MergedNode, name: string): string {
  const e = node.inode.entry;
  const size = e.type === "chardev" || e.type === "blockdev" ? `${e.devmajor}, ${e.devminor}` : String(e.size);
  const time = new Date(e.mtimeSec * 1000).toISOString().replace(/\.000Z$/, "Z");
  const link = e.type === "symlink" ? ` -> ${e.linkname}` : "";
  return `${modeString(e)} ${String(e.uid).padStart(5)} ${String(e.gid).padStart(5)} ${size.padStart(10)} ${time} ${name}${link}\n`;
}

/** `shoal ls IMAGE [PATH]`. */
export function registerLs(program: Command): void {
  program
    .command("ls")
    .description("list a directory (or one file) of an image lazily, through its indexes only")
    .argument("<image>", "lazy image reference")
    .argument("[path]", "path inside the image", "/")
    .option("--plain-http", "use http:// instead of https://")
    .option("--supernode <urls>", "supernode URLs (comma-separated): indexes of unconverted layers, and their spans, come from them (without, unconverted images are refused)")
    .option("-R, --recursive", "list subdirectories recursively")
    .option("--stats", "print the bytes fetched to stderr")
    .action(async (image: string, path: string, opts: ReadOptions & { recursive?: boolean }) => {
      await withImage(image, opts, async (img) => {
        const node = img.tree.resolve(img.normalize(path), { follow: true });
        const out: string[] = [];
        if (!node.children) out.push(line(node, "/" + node.path));
        else if (opts.recursive) {
          for (const n of img.tree.walk(node)) if (n !== node) out.push(line(n, "/" + n.path));
        } else {
          for (const name of [...node.children.keys()].sort()) out.push(line(node.children.get(name)!, name));
        }
        process.stdout.write(out.join(""));
      });
    });
}

/** `shoal cat IMAGE PATH`. */
export function registerCat(program: Command): void {
  program
    .command("cat")
    .description("print a file of an image, fetching only the chunks that hold it")
    .argument("<image>", "lazy image reference")
    .argument("<path>", "path of a regular file inside the image (symlinks are followed)")
    .option("--plain-http", "use http:// instead of https://")
    .option("--supernode <urls>", "supernode URLs (comma-separated): indexes of unconverted layers, and their spans, come from them (without, unconverted images are refused)")
    .option("--stats", "print the bytes fetched to stderr")
    .action(async (image: string, path: string, opts: ReadOptions) => {
      await withImage(image, opts, async (img) => {
        const node = img.tree.resolve(img.normalize(path), { follow: true });
        const e = node.inode.entry;
        if (e.type !== "file") throw new InvalidArgumentError(`${path}: not a regular file (${e.type})`);
        const reader = img.reader(node.inode.layer);
        const step = reader.index.chunkSize;
        for (let off = 0; off < e.size; off += step) {
          const bytes = await reader.read(e, off, step);
          if (!process.stdout.write(bytes)) await new Promise((r) => process.stdout.once("drain", r));
        }
      });
    });
}
