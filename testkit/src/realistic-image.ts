/**
 * A realistic image for lazy-loading benches: a Debian 12 (bookworm) minbase
 * rootfs with python3 and nginx, built with debootstrap from the Debian
 * mirror configured in apt's sources and packed as one gzip layer of an OCI
 * layout (tag "v1"), cached by version. Plus the "first useful work" a
 * container of it does: python imports, then nginx answering HTTP, run the
 * same way on an unpacked directory or on a read-only (lazy) mount.
 *
 * Isolation: package scripts run in a chroot inside fresh network, mount and
 * pid namespaces (`unshare`), so nothing they start can reach the network,
 * outlive the build or leave a mount behind; the first-work runner does the
 * same (without a network namespace: nginx binds host loopback only).
 * Needs root, debootstrap, GNU tar, unshare (util-linux) and overlayfs.
 */
import { spawn } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { createWriteStream, existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pidAlive } from "./host-tools.ts";
import { mountsUnder, unmountAllUnder } from "./mounts.ts";
import { MediaTypes, layoutBlobPath, ociArchitecture, tagManifest, writeLayoutBlob } from "./image-layout.ts";
import { freePort } from "./registry.ts";

/** Bump when the recipe changes: it keys the cache. */
export const REALISTIC_IMAGE_VERSION = "bookworm-minbase-python3-nginx-2";
/** Packages installed on top of minbase. */
export const REALISTIC_IMAGE_PACKAGES = ["python3", "nginx"] as const;

/** A built (or cached) realistic image. */
export interface RealisticImage {
  /** OCI layout directory. */
  layoutDir: string;
  /** Tag of the image in the layout ("v1"). */
  tag: string;
  manifestDigest: string;
  /** Layer blobs as in the manifest. */
  layers: Array<{ digest: string; size: number; mediaType: string; diffId: string }>;
  /** Sum of the layer blob sizes (what a full pull downloads, manifest and config aside). */
  compressedBytes: number;
  /** Sum of the uncompressed layer tar sizes. */
  uncompressedBytes: number;
  /** Mirror the packages came from. */
  mirror: string;
  /** Recipe version (cache key). */
  version: string;
  /** True when taken from the cache. */
  cached: boolean;
}

/** A Debian archive entry from apt's sources. */
export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  signedBy: string | undefined;
}

/** Entries of type `deb` in /etc/apt/sources.list and sources.list.d/*.list|*.sources (one-line and deb822 formats). */
export function readAptSources(root = "/etc/apt"): AptSource[] {
  const out: AptSource[] = [];
  const files: string[] = [];
  if (existsSync(join(root, "sources.list"))) files.push(join(root, "sources.list"));
  const d = join(root, "sources.list.d");
  if (existsSync(d)) {
    for (const f of readdirSync(d).sort()) if (f.endsWith(".list") || f.endsWith(".sources")) files.push(join(d, f));
  }
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    if (file.endsWith(".sources")) {
      for (const para of text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        let last = "";
        for (const line of para.split("\n")) {
          if (line.startsWith("#") || line.trim() === "") continue;
          if (/^\s/.test(line) && last) {
            fields.set(last, `${fields.get(last)} ${line.trim()}`);
            continue;
          }
          const m = /^([\w-]+):\s*(.*)$/.exec(line);
          if (!m) continue;
          last = m[1]!.toLowerCase();
          fields.set(last, m[2]!.trim());
        }
        if (!(fields.get("types") ?? "").split(/\s+/).includes("deb")) continue;
        if (/^(no|false)$/i.test(fields.get("enabled") ?? "yes")) continue;
        for (const uri of (fields.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
          out.push({
            uri,
            suites: (fields.get("suites") ?? "").split(/\s+/).filter(Boolean),
            components: (fields.get("components") ?? "").split(/\s+/).filter(Boolean),
            signedBy: fields.get("signed-by")?.startsWith("/") ? fields.get("signed-by") : undefined,
          });
        }
      }
    } else {
      for (const raw of text.split("\n")) {
        const line = raw.replace(/#.*$/, "").trim();
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
        if (!m) continue;
        const signed = /(?:^|\s)signed-by=(\S+)/.exec(m[1] ?? "");
        out.push({ uri: m[2]!, suites: [m[3]!], components: m[4]!.split(/\s+/).filter(Boolean), signedBy: signed?.[1] });
      }
    }
  }
  return out;
}

/** The configured mirror serving `suite` (default bookworm) with `main`. */
export function debianMirror(suite = "bookworm"): AptSource {
  const src = readAptSources().find((s) => s.suites.includes(suite) && s.components.includes("main"));
  if (!src) throw new Error(`no apt source for ${suite} main in /etc/apt/sources.list*`);
  return src;
}

/** Updates a hash with every chunk passing through. */
class HashTap extends Transform {
  readonly hash: Hash = createHash("sha256");
  bytes = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** Runs a command, output to `logFile` (appended); rejects with the log's tail. */
async function runLogged(cmd: string, args: string[], logFile: string, env?: Record<string, string>): Promise<void> {
  const log = createWriteStream(logFile, { flags: "a" });
  await new Promise<void>((resolve) => log.once("open", () => resolve()));
  log.write(`$ ${cmd} ${args.join(" ")}\n`);
  const child = spawn(cmd, args, { stdio: ["ignore", log, log], env: env ? { ...process.env, ...env } : process.env });
  const [code, sig] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c, s) => resolve([c, s]));
  });
  await new Promise<void>((resolve) => log.end(() => resolve()));
  if (code !== 0) {
    const tail = (await readFile(logFile, "utf8")).split("\n").slice(-30).join("\n");
    throw new Error(`${cmd} ${args.slice(0, 6).join(" ")}... failed (${code ?? sig}); log ${logFile}:\n${tail}`);
  }
}

const systemEnv = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C", LANG: "C", DEBIAN_FRONTEND: "noninteractive" };

async function readInfo(dir: string): Promise<RealisticImage | undefined> {
  try {
    const info = JSON.parse(await readFile(join(dir, "image.json"), "utf8")) as RealisticImage;
    await stat(layoutBlobPath(info.layoutDir, info.manifestDigest));
    for (const l of info.layers) if ((await stat(layoutBlobPath(info.layoutDir, l.digest))).size !== l.size) return undefined;
    return { ...info, cached: true };
  } catch {
    return undefined;
  }
}

/**
 * The realistic image's OCI layout in `cacheDir`/`REALISTIC_IMAGE_VERSION`,
 * built on first use (debootstrap: a minute or two and ~60 MB from the
 * mirror) and reused afterwards. Concurrent builders each build in their own
 * temp dir; the first to finish wins. `log` receives progress lines.
 */
export async function buildRealisticImage(cacheDir: string, opts: { log?: (line: string) => void } = {}): Promise<RealisticImage> {
  const log = opts.log ?? (() => {});
  const final = join(cacheDir, REALISTIC_IMAGE_VERSION);
  const hit = await readInfo(final);
  if (hit) return hit;
  await mkdir(cacheDir, { recursive: true });
  // Leftovers of an earlier interrupted build of this version.
  if (existsSync(final)) await rm(final, { recursive: true, force: true });

  // Build dirs of builders that were killed outright (the pid is in the name).
  for (const f of await readdir(cacheDir)) {
    const m = /\.tmp-(\d+)-[^/]*$/.exec(f);
    if (m && !pidAlive(Number(m[1])) && (await mountsUnder(join(cacheDir, f))).length === 0) {
      await rm(join(cacheDir, f), { recursive: true, force: true });
    }
  }

  const mirror = debianMirror("bookworm");
  const work = await mkdtemp(join(cacheDir, `${REALISTIC_IMAGE_VERSION}.tmp-${process.pid}-`));
  const rootfs = join(work, "rootfs");
  const logFile = join(work, "build.log");
  try {
    const arch = ociArchitecture();
    const common = [
      "--variant=minbase", `--include=${REALISTIC_IMAGE_PACKAGES.join(",")}`, `--arch=${arch}`,
      ...(mirror.signedBy && existsSync(mirror.signedBy) ? [`--keyring=${mirror.signedBy}`] : []),
    ];
    log(`debootstrap (download) from ${mirror.uri}`);
    // Stage 1 downloads and unpacks; private mount namespace so nothing it mounts escapes.
    await runLogged("unshare", ["--mount", "--propagation", "private", "debootstrap", "--foreign", ...common, "bookworm", rootfs, mirror.uri], logFile, systemEnv);
    log("debootstrap (configure, offline)");
    // Stage 2 configures packages offline: no network, private mounts, and a pid
    // namespace so any daemon a maintainer script starts dies with it.
    await runLogged("unshare", [
      "--net", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
      "chroot", rootfs, "/debootstrap/debootstrap", "--second-stage",
    ], logFile, systemEnv);
    await unmountAllUnder(rootfs);

    log("packing layer");
    const layoutDir = join(work, "layout");
    await mkdir(join(layoutDir, "blobs", "sha256"), { recursive: true });
    const top = (await readdir(rootfs)).filter((n) => n !== "debootstrap").sort();
    const excludes = [
      "dev/*", "proc/*", "sys/*", "run/*", "tmp/*", "var/tmp/*",
      "var/cache/apt/*", "var/lib/apt/lists/*", "var/cache/debconf/*-old", "var/log/bootstrap.log",
      // Copied from the build host by debootstrap; engines bind-mount their own.
      "etc/hostname", "etc/resolv.conf",
    ];
    const tar = spawn("tar", [
      "--create", "--file=-", "--directory", rootfs, "--format=posix", "--numeric-owner", "--xattrs", "--xattrs-include=*",
      "--sort=name", "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
      "--anchored", ...excludes.map((e) => `--exclude=${e}`), "--", ...top,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    let tarErr = "";
    tar.stderr!.setEncoding("utf8").on("data", (s: string) => {
      tarErr += s;
    });
    const tarExit = new Promise<number | null>((resolve, reject) => {
      tar.once("error", reject);
      tar.once("close", (code) => resolve(code));
    });
    const rawTap = new HashTap();
    const gzTap = new HashTap();
    const tmpBlob = join(layoutDir, "blobs", "layer.tmp");
    await pipeline(tar.stdout!, rawTap, createGzip({ level: 6 }), gzTap, createWriteStream(tmpBlob));
    const code = await tarExit;
    if (code !== 0) throw new Error(`tar failed (${code}): ${tarErr.trim()}`);
    const layerDigest = `sha256:${gzTap.hash.digest("hex")}`;
    const diffId = `sha256:${rawTap.hash.digest("hex")}`;
    await rename(tmpBlob, layoutBlobPath(layoutDir, layerDigest));
    const layer = { digest: layerDigest, size: gzTap.bytes, mediaType: MediaTypes.ociLayerGzip, diffId };

    const created = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const config = {
      created,
      architecture: arch,
      os: "linux",
      config: {
        Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        Cmd: ["nginx", "-g", "daemon off;"],
      },
      rootfs: { type: "layers", diff_ids: [diffId] },
      history: [{ created, created_by: `debootstrap --variant=minbase --include=${REALISTIC_IMAGE_PACKAGES.join(",")} bookworm (shoal testkit ${REALISTIC_IMAGE_VERSION})` }],
    };
    const configBytes = new TextEncoder().encode(JSON.stringify(config));
    const configDigest = await writeLayoutBlob(layoutDir, configBytes);
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: configBytes.length },
      layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
    };
    const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
    const manifestDigest = await writeLayoutBlob(layoutDir, manifestBytes);
    await tagManifest(layoutDir, "v1", { digest: manifestDigest, size: manifestBytes.length, mediaType: MediaTypes.ociManifest });

    await rm(rootfs, { recursive: true, force: true });
    const info: RealisticImage = {
      layoutDir: join(final, "layout"), tag: "v1", manifestDigest, layers: [layer],
      compressedBytes: layer.size, uncompressedBytes: rawTap.bytes, mirror: mirror.uri, version: REALISTIC_IMAGE_VERSION, cached: false,
    };
    await writeFile(join(work, "image.json"), JSON.stringify(info, null, 2));
    try {
      await rename(work, final);
    } catch (err) {
      // Another builder finished first: use its result.
      const other = await readInfo(final);
      if (!other) throw err;
      await rm(work, { recursive: true, force: true });
      return other;
    }
    log(`image ready: ${(info.compressedBytes / 2 ** 20).toFixed(1)} MiB gzip, ${(info.uncompressedBytes / 2 ** 20).toFixed(1)} MiB tar`);
    return info;
  } catch (err) {
    await unmountAllUnder(work);
    await rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** The python modules imported by the first check. */
export const FIRST_WORK_PYTHON = "import json, sqlite3, http.server, email, xml.dom.minidom, asyncio, decimal";

/** The nginx config of the second check: one worker, serving Debian's default page on 127.0.0.1:`port`. */
export function firstWorkNginxConf(port: string): string {
  return `worker_processes 1;
pid /tmp/shoal-nginx.pid;
error_log stderr notice;
events { worker_connections 64; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  server {
    listen 127.0.0.1:${port};
    root /var/www/html;
    index index.html index.nginx-debian.html;
  }
}
`;
}

/** What "first useful work" is, in order. */
export const FIRST_WORK_CHECKS: readonly { name: string; description: string }[] = [
  { name: "python-imports", description: `chroot ROOTFS python3 -c "${FIRST_WORK_PYTHON}"` },
  { name: "nginx-http", description: "chroot ROOTFS nginx -c CONF -g 'daemon off;' on 127.0.0.1:PORT, then GET / answers 200" },
];

/** Timings of {@link runFirstWork}, seconds from its start. */
export interface FirstWorkResult {
  /** Until the python imports succeeded. */
  pythonSec: number;
  /** Until nginx answered 200 (the whole first useful work). */
  totalSec: number;
  /** Bytes of the page nginx served. */
  pageBytes: number;
}

/** The first work itself, for sh: `$IN` runs a program in the root (empty inside a container), `$R` is the root's path from here. */
const FIRST_WORK_STEPS = `
$IN /usr/bin/python3 -c "${FIRST_WORK_PYTHON}"
echo python-ok
cat > "$R/tmp/shoal-nginx.conf" <<EOF
${firstWorkNginxConf("$PORT")}EOF
$IN /usr/sbin/nginx -c /tmp/shoal-nginx.conf -g 'daemon off;' &
NGINX=$!
echo "nginx-pid $NGINX"
read _ || true
kill "$NGINX"
wait "$NGINX" || true
`;

// $1 rootfs (read-only is fine), $2 empty scratch dir, $3 port. Runs as pid 1 of
// fresh pid and mount namespaces: everything it starts or mounts ends with it.
const FIRST_WORK_SCRIPT = `
set -eu
L="$1"; T="$2"; PORT="$3"
mount -t tmpfs -o mode=0755 shoal-firstwork "$T"
mkdir "$T/upper" "$T/work" "$T/root"
M="$T/root"
mount -t overlay overlay -o "lowerdir=$L,upperdir=$T/upper,workdir=$T/work" "$M"
mkdir -p "$M/dev" "$M/proc" "$M/tmp"
for d in null:1:3 zero:1:5 random:1:8 urandom:1:9; do
  n=\${d%%:*}; r=\${d#*:}
  rm -f "$M/dev/$n"; mknod -m 666 "$M/dev/$n" c \${r%%:*} \${r#*:}
done
mount -t proc proc "$M/proc"
IN="chroot $M"; R="$M"
${FIRST_WORK_STEPS}
umount "$M/proc"
umount "$M"
umount "$T"
echo done
`;

/**
 * The first work as a container's command (`sh -c SCRIPT sh PORT`, on the host's network):
 * what {@link runFirstWork} does in a chroot, with the container's own writable root.
 */
export const FIRST_WORK_CONTAINER_SCRIPT = `
set -eu
PORT="$1"; IN=""; R=""
mkdir -p /tmp
${FIRST_WORK_STEPS}
echo done
`;

function httpGet(url: string): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { timeout: 5000 }, (res) => {
      let bytes = 0;
      res.on("data", (c: Buffer) => {
        bytes += c.length;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Does the image's first useful work on `rootfs` (an unpacked directory or a
 * read-only mount): a writable overlay on top (tmpfs upper), python3 imports,
 * then nginx started in the foreground and asked for `/` over HTTP until it
 * answers 200; then nginx is killed by pid and everything unmounted. Runs in
 * private mount and pid namespaces (`unshare`), so a failure or a kill leaves
 * no mount or process behind. Rejects on any failure or after `timeoutMs`.
 */
export async function runFirstWork(rootfs: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<FirstWorkResult> {
  const scratch = await mkdtemp(join(tmpdir(), "shoal-firstwork-"));
  try {
    return await runFirstWorkCommand("unshare", (port) => [
      "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
      "sh", "-c", FIRST_WORK_SCRIPT, "sh", rootfs, scratch, String(port),
    ], opts);
  } finally {
    // The tmpfs lived in the private namespace; the host dir is empty.
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Runs `command` with `args(port)`, a process that does the first work as
 * {@link FIRST_WORK_CONTAINER_SCRIPT} does (prints `python-ok`, then
 * `nginx-pid N`, serves on 127.0.0.1:port, stops nginx and exits once its
 * stdin gets a line), and times it from the spawn until nginx answers 200.
 * Rejects on any failure or after `timeoutMs` (the process is then killed).
 */
export async function runFirstWorkCommand(
  command: string, args: (port: number) => string[], opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<FirstWorkResult> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(command, args(port), { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...systemEnv } });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (s: string) => {
    stderr = (stderr + s).slice(-8000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, sig) => resolve(code ?? (sig ? -1 : null)));
  });
  const kill = () => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  const timer = setTimeout(kill, opts.timeoutMs ?? 120_000);
  opts.signal?.addEventListener("abort", kill, { once: true });
  try {
    let pythonSec = NaN;
    let nginxStarted = false;
    const lines = createInterface({ input: child.stdout! });
    const started = new Promise<void>((resolve, reject) => {
      lines.on("line", (line) => {
        if (line === "python-ok") pythonSec = (performance.now() - t0) / 1000;
        if (line.startsWith("nginx-pid ")) {
          nginxStarted = true;
          resolve();
        }
      });
      void exited.then((code) => reject(new Error(`first work failed (exit ${code}) before nginx started:\n${stderr.trim()}`)));
    });
    await started;
    let page = { status: 0, bytes: 0 };
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`first work ended early:\n${stderr.trim()}`);
      try {
        page = await httpGet(`http://127.0.0.1:${port}/`);
        if (page.status === 200) break;
        throw new Error(`nginx answered ${page.status}:\n${stderr.trim()}`);
      } catch (err) {
        if (/answered/.test((err as Error).message)) throw err;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    const totalSec = (performance.now() - t0) / 1000;
    child.stdin!.end("\n");
    const code = await exited;
    if (code !== 0) throw new Error(`first work cleanup failed (exit ${code}):\n${stderr.trim()}`);
    if (!nginxStarted) throw new Error("nginx did not start");
    return { pythonSec, totalSec, pageBytes: page.bytes };
  } finally {
    clearTimeout(timer);
    kill();
    await exited.catch(() => {});
  }
}
