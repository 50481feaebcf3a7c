// The stargz snapshotter daemon of the containerd bench (main.go beside this file), built
// from Debian's packages only and cached in `.cache/stargz/`; rebuilt when main.go, Go or
// the stargz library package changes. Installs the Debian packages it needs when missing.
//   node bench/src/stargz/build.ts    (prints the binary's path)
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "@shoal/testkit";

/** Where the daemon and the eStargz images are cached: `SHOAL_BENCH_STARGZ_CACHE`, else `.cache/stargz` in the checkout. */
export const STARGZ_CACHE = process.env.SHOAL_BENCH_STARGZ_CACHE ?? fileURLToPath(new URL("../../../.cache/stargz", import.meta.url));

/** The daemon's source. */
export const STARGZ_MAIN_GO = fileURLToPath(new URL("./main.go", import.meta.url));

/**
 * Debian packages: Go 1.19, the stargz snapshotter library's source (with every
 * Go dependency as golang-*-dev packages) and `ctr-remote` (convert, optimize, rpull).
 */
export const STARGZ_PACKAGES = ["golang-go", "golang-github-containerd-stargz-snapshotter-dev", "stargz-snapshotter"] as const;

/** The library package whose version goes into the build's cache key. */
const LIBRARY_PACKAGE = "golang-github-containerd-stargz-snapshotter-dev";

/** Installed version of each of `pkgs` ("" when not installed). */
async function installedVersions(pkgs: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of pkgs) {
    const v = await run("dpkg-query", ["-W", "-f", "${Status}\t${Version}", p]).then((r) => r.stdout, () => "");
    const [status, version] = v.split("\t");
    out.set(p, status?.endsWith(" installed") ? (version ?? "") : "");
  }
  return out;
}

/** The installed version of Debian package `pkg` ("" when not installed). */
export async function debVersion(pkg: string): Promise<string> {
  return (await installedVersions([pkg])).get(pkg) ?? "";
}

/** Installs those of {@link STARGZ_PACKAGES} that are missing (apt-get; an `apt-get update` first when the install fails). */
export async function ensureStargzPackages(log: (s: string) => void = (s) => console.error(s)): Promise<void> {
  const missing = [...(await installedVersions(STARGZ_PACKAGES))].filter(([, v]) => v === "").map(([p]) => p);
  if (missing.length === 0) return;
  log(`stargz: installing Debian packages ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const install = () => run("apt-get", ["install", "-y", "--no-install-recommends", ...missing], { env });
  try {
    await install();
  } catch {
    log("stargz: apt-get install failed; apt-get update and again");
    await run("apt-get", ["update"], { env });
    await install();
  }
  log("stargz: packages installed");
}

/** The built daemon. */
export interface StargzBuild {
  /** Path of the `containerd-stargz-grpc` binary. */
  binary: string;
  /** The cache key it was built for (main.go, Go, library package). */
  key: string;
  /** Whether it was built by this call (false: from the cache). */
  built: boolean;
}

/**
 * Builds main.go into `<cacheDir>/containerd-stargz-grpc` with Debian's Go in
 * GOPATH mode against /usr/share/gocode, unless the binary there was built
 * from the same main.go, Go and library version. Installs the packages first
 * when missing. Progress on `log` (stderr by default).
 */
export async function buildStargzSnapshotter(log: (s: string) => void = (s) => console.error(s), cacheDir: string = STARGZ_CACHE): Promise<StargzBuild> {
  await ensureStargzPackages(log);
  const source = await readFile(STARGZ_MAIN_GO);
  const goVersion = (await run("go", ["version"])).stdout.trim();
  const libVersion = await debVersion(LIBRARY_PACKAGE);
  const key = createHash("sha256").update(source).update(`\0${goVersion}\0${libVersion}`).digest("hex").slice(0, 16);
  const binary = join(cacheDir, "containerd-stargz-grpc");
  const stamp = `${binary}.key`;
  if (existsSync(binary) && (await readFile(stamp, "utf8").catch(() => "")) === key) return { binary, key, built: false };

  log(`stargz: building the snapshotter daemon (${goVersion}, ${LIBRARY_PACKAGE} ${libVersion}; about half a minute)`);
  await mkdir(cacheDir, { recursive: true });
  const gopath = await mkdtemp(join(tmpdir(), "shoal-stargz-build-"));
  try {
    const src = join(gopath, "src", "shoal-bench-stargz");
    await mkdir(src, { recursive: true });
    await copyFile(STARGZ_MAIN_GO, join(src, "main.go"));
    const out = join(gopath, "containerd-stargz-grpc");
    const t0 = performance.now();
    await run("go", ["build", "-buildvcs=false", "-trimpath", "-o", out, "."], {
      cwd: src,
      env: {
        GO111MODULE: "off", GOPATH: `${gopath}:/usr/share/gocode`, GOFLAGS: "", GOPROXY: "off",
        // the compiled packages stay for the next build
        GOCACHE: join(cacheDir, "go-build"),
      },
    });
    await rename(out, binary).catch(async () => {
      await copyFile(out, `${binary}.tmp`);
      await rename(`${binary}.tmp`, binary);
    });
    await writeFile(stamp, key);
    log(`stargz: built ${binary} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    return { binary, key, built: true };
  } finally {
    await rm(gopath, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const b = await buildStargzSnapshotter();
  console.log(b.binary);
}
