// `npm run release`: one artifact per host, made from this checkout, in three
// wrappings of the same tree: a Debian package, a plain tarball for other
// distributions (extract it at /), and an OCI image for Kubernetes
// (scripts/release/image.ts). Both carry their own Node runtime (the
// npm package `node` this repository pins) and shoal bundled ahead of time
// (scripts/release/bundle.ts): no TypeScript, no npm and no network at
// install or run time.
//
//   node scripts/release/main.ts [--out DIR]     (default: dist/)
//
// The tree, as installed:
//   /usr/bin/shoal                  the command (a shell wrapper: the bundled Node runs the bundle)
//   /usr/lib/shoal/                 node, shoal.mjs and its chunks, assets/, node_modules/ (native parts)
//   /lib/systemd/system/            shoal-agent, shoal-fuse-keeper, shoal-supernode units
//   /etc/shoal/                     agent.json, fuse-keeper.json, supernode.json (the settings schema's config files)
//   /usr/share/shoal/kubernetes/    the DaemonSet, StatefulSet, Job and Secret manifests
//   /usr/share/doc/shoal/           README.md, architecture.md, cli.md
import { execFileSync } from "node:child_process";
import { chmod, cp, mkdir, readdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { buildInfo } from "@shoal/cli/build-info";
import { bundleCli } from "./bundle.ts";
import { buildImage } from "./image.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const { values } = parseArgs({ options: { out: { type: "string" }, help: { type: "boolean", short: "h" } } });
if (values.help) {
  console.log("usage: node scripts/release/main.ts [--out DIR]\n\nBuilds dist/shoal_VERSION_amd64.deb, dist/shoal-VERSION-linux-amd64.tar.gz and dist/shoal-VERSION-oci.tar from this checkout.");
  process.exit(0);
}
const out = values.out ?? join(repo, "dist");
const step = (s: string) => console.error(`[release ${new Date().toISOString().slice(11, 19)}] ${s}`);

const info = buildInfo();
const version = info.version;

const stage = join(out, `shoal_${version}_amd64`);
await rm(stage, { recursive: true, force: true });
const lib = join(stage, "usr/lib/shoal");
step(`bundling shoal ${info.version} (${info.commit})`);
const { assets } = await bundleCli(repo, lib, info);
step(`bundled; assets: ${assets.join(", ")}`);
await cp(join(repo, "node_modules/node/bin/node"), join(lib, "node"));
await chmod(join(lib, "node"), 0o755);
await mkdir(join(stage, "usr/bin"), { recursive: true });
// relative to itself, so that the tarball works wherever it is extracted
await writeFile(join(stage, "usr/bin/shoal"), `#!/bin/sh
# shoal ${info.version} (${info.commit}): its own Node runtime runs the bundled code
lib="$(dirname "$(readlink -f "$0")")/../lib/shoal"
exec "$lib/node" "$lib/shoal.mjs" "$@"
`, { mode: 0o755 });
await cp(join(repo, "packaging/systemd"), join(stage, "lib/systemd/system"), { recursive: true });
await cp(join(repo, "packaging/etc"), join(stage, "etc/shoal"), { recursive: true });
await cp(join(repo, "deploy/kubernetes"), join(stage, "usr/share/shoal/kubernetes"), { recursive: true });
await mkdir(join(stage, "usr/share/doc/shoal"), { recursive: true });
for (const [from, to] of [["README.md", "README.md"], ["docs/architecture.md", "architecture.md"], ["docs/cli.md", "cli.md"]] as const) {
  await cp(join(repo, from), join(stage, "usr/share/doc/shoal", to));
}

await mkdir(out, { recursive: true });
const tarball = join(out, `shoal-${version}-linux-amd64.tar.gz`);
step(`writing ${tarball}`);
execFileSync("tar", ["-C", stage, "--owner=0", "--group=0", "--numeric-owner", "--sort=name", "-czf", tarball, "usr", "lib", "etc"]);

step("writing the Debian package");
const installedKiB = Math.ceil((await treeBytes(stage)) / 1024);
await cp(join(repo, "packaging/debian"), join(stage, "DEBIAN"), { recursive: true });
await writeFile(join(stage, "DEBIAN/control"), `Package: shoal
Version: ${version}
Architecture: amd64
Maintainer: shoal developers <shoal@localhost>
Installed-Size: ${installedKiB}
Depends: libc6 (>= 2.28), libstdc++6, libgcc-s1, mount
Suggests: containerd
Section: admin
Priority: optional
Description: peer-to-peer distribution and lazy loading of container images
 The shoal agent mounts container images lazily (each layer an erofs
 filesystem over chunks fetched on demand), shares chunks with its
 neighbours and datacenter supernodes, serves containerd as a remote
 snapshotter and engines as a registry mirror. Built from commit ${info.commit};
 carries its own Node.js runtime.
`);
await writeFile(join(stage, "DEBIAN/conffiles"), (await readdir(join(repo, "packaging/etc"))).sort().map((f) => `/etc/shoal/${f}\n`).join(""));
for (const f of await readdir(join(stage, "DEBIAN"))) if (["postinst", "prerm", "postrm"].includes(f)) await chmod(join(stage, "DEBIAN", f), 0o755);
const deb = join(out, `shoal_${version}_amd64.deb`);
execFileSync("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", stage, deb], { stdio: ["ignore", "ignore", "inherit"] });
await rm(join(stage, "DEBIAN"), { recursive: true });

step("writing the OCI image");
const image = await buildImage(stage, out, version);

const mib = async (f: string) => `${((await stat(f)).size / 1048576).toFixed(1)} MiB`;
console.log(`${deb}\t${await mib(deb)}`);
console.log(`${tarball}\t${await mib(tarball)}`);
console.log(`${image}\t${await mib(image)}`);
console.log(`installed\t${(installedKiB / 1024).toFixed(1)} MiB (of it Node ${await mib(join(lib, "node"))})`);

async function treeBytes(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    n += e.isDirectory() ? await treeBytes(p) : (await stat(p)).size;
  }
  return n;
}
