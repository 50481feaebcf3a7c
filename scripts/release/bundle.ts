// The shoal command bundled ahead of time: esbuild turns cli/src/main.ts and
// everything it imports into plain ES modules (one chunk per lazily loaded
// command, so `shoal mount` never parses the supernode or libp2p), with the
// build's version and commit compiled in. Native packages stay outside the
// bundle and are copied beside it with what they need at run time; files a
// module reads next to itself (`new URL("../web/page.js", import.meta.url)`)
// are copied under `assets/` and the URL is rewritten to point there.
import { cp, mkdir, readFile, stat } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { build, type Plugin } from "esbuild";
import type { BuildInfo } from "@shoal/cli/build-info";

/** Packages with native code: loaded from `node_modules/` beside the bundle, never bundled. */
export const NATIVE_PACKAGES = ["classic-level", "koffi"] as const;


/**
 * Bundle the CLI into `outDir` (`shoal.mjs` plus its chunks, `assets/`,
 * `node_modules/` of the native packages). Returns the asset paths copied,
 * relative to the repository.
 */
export async function bundleCli(repo: string, outDir: string, info: BuildInfo): Promise<{ assets: string[] }> {
  const assets = new Set<string>();
  await build({
    absWorkingDir: repo,
    entryPoints: { shoal: join(repo, "cli/src/main.ts") },
    outdir: outDir,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node24",
    outExtension: { ".js": ".mjs" },
    chunkNames: "chunk-[hash]",
    external: [...NATIVE_PACKAGES],
    define: { SHOAL_BUILD: JSON.stringify(info) },
    // CommonJS dependencies inside ES modules still call require()
    banner: { js: 'import { createRequire as __shoalRequire } from "node:module"; const require = __shoalRequire(import.meta.url);' },
    legalComments: "none",
    logLevel: "warning",
    plugins: [assetsNextToModules(repo, assets)],
  });
  for (const a of assets) await cp(join(repo, a), join(outDir, "assets", a), { recursive: true });
  await copyWithDependencies(repo, [...NATIVE_PACKAGES], join(outDir, "node_modules"));
  return { assets: [...assets].sort() };
}

/** `new URL("<relative>", import.meta.url)` in the repository's own modules, pointed at `./assets/<path in the repository>`. */
function assetsNextToModules(repo: string, assets: Set<string>): Plugin {
  const pattern = /new URL\((["'`])(\.{1,2}\/[^"'`$]*)/g;
  return {
    name: "shoal-assets",
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        if (args.path.includes("/node_modules/")) return undefined;
        const source = await readFile(args.path, "utf8");
        if (!source.includes("import.meta.url")) return undefined;
        const contents = source.replace(pattern, (_all, quote: string, rel: string) => {
          const inRepo = relative(repo, resolve(dirname(args.path), rel));
          if (inRepo.startsWith("..")) throw new Error(`${args.path}: ${rel} is outside the repository`);
          // a template's static prefix names a directory (`../web/${name}`): copy all of it
          assets.add(rel.endsWith("/") ? `${inRepo}/` : inRepo);
          return `new URL(${quote}./assets/${inRepo}${rel.endsWith("/") ? "/" : ""}`;
        });
        return { contents, loader: "ts" };
      });
    },
  };
}

/** Copy each package of `names` and, recursively, the dependencies it declares that are installed, from the repository's node_modules. */
async function copyWithDependencies(repo: string, names: string[], to: string): Promise<void> {
  const seen = new Set<string>();
  const queue = [...names];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (seen.has(name)) continue;
    const from = join(repo, "node_modules", name);
    if (!(await stat(from).catch(() => undefined))) continue; // an optional dependency of another platform
    seen.add(name);
    await mkdir(dirname(join(to, name)), { recursive: true });
    await cp(from, join(to, name), { recursive: true, dereference: true, filter: (src) => keep(relative(from, src)) });
    const pkg = JSON.parse(await readFile(join(from, "package.json"), "utf8")) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
    queue.push(...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.optionalDependencies ?? {}));
  }
}

/** Leave out what no run needs: C sources, docs, source maps, and prebuilt binaries for other platforms. */
function keep(rel: string): boolean {
  const prebuild = /^prebuilds\/([^/]+)/.exec(rel);
  if (prebuild && prebuild[1] !== "linux-x64") return false;
  return !/\.(md|map|cc|hh|h|c|inc|gyp)$/.test(rel);
}
