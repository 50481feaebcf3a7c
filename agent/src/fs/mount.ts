/**
 * Mount helpers around mount(8)/umount(8): overlay mounts of layer
 * directories, unmounting, and reading /proc/self/mountinfo. Everything here
 * is asynchronous on purpose: a synchronous call that touches a FUSE mount
 * served by this process would deadlock it.
 */
import { InvalidArgumentError, ShoalError } from "@shoal/base";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";

/** Options of {@link runCommand}. */
export interface RunOptions {
  signal?: AbortSignal;
  cwd?: string;
  /** File descriptors handed to the child as fd 3, 4, ... */
  fds?: number[];
}

/**
 * Run `cmd args` (no shell) and resolve when it exits 0. Rejects with a
 * `ShoalError` (`SHOAL_ERR_MOUNT`) carrying the command's stderr otherwise.
 */
export function runCommand(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      stdio: ["ignore", "ignore", "pipe", ...(opts.fds ?? [])],
      cwd: opts.cwd,
      signal: opts.signal,
    });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.on("error", (err) => reject(new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${cmd} ${args.join(" ")}: ${err.message}`, { cause: err })));
    child.on("close", (code, signal) => {
      if (code === 0) resolvePromise();
      else reject(new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${cmd} ${args.join(" ")} failed (${code ?? signal}): ${stderr.trim()}`));
    });
  });
}

/** One line of /proc/self/mountinfo. */
export interface MountInfo {
  /** Device of the mounted filesystem ("major:minor"). */
  device: string;
  /** The directory of that filesystem this mount shows (not "/" for a bind mount of a subdirectory). */
  root: string;
  mountpoint: string;
  fstype: string;
  source: string;
  /** The filesystem's own options (an overlay's lowerdir, upperdir, workdir). */
  superOptions: string;
}

const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mount table of this process's mount namespace, in mount order. */
export async function readMountInfo(): Promise<MountInfo[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const out: MountInfo[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const f = line.split(" ");
    const dash = f.indexOf("-", 6);
    if (dash < 0) continue;
    out.push({
      device: f[2]!, root: unescapeMount(f[3]!), mountpoint: unescapeMount(f[4]!), fstype: f[dash + 1]!, source: unescapeMount(f[dash + 2] ?? ""), superOptions: unescapeMount(f[dash + 3] ?? ""),
    });
  }
  return out;
}

/** The topmost mount at exactly `path` (made absolute, not resolved through symlinks), or undefined. */
export async function findMount(path: string): Promise<MountInfo | undefined> {
  const abs = resolve(path);
  return (await readMountInfo()).filter((m) => m.mountpoint === abs).at(-1);
}

/**
 * True when a mount uses one of `dirs`: as an overlay's lower, upper or work
 * directory, as the source of a bind mount, or as a mountpoint.
 */
export async function dirsInUse(dirs: readonly string[]): Promise<boolean> {
  const table = await readMountInfo();
  for (const raw of dirs) {
    const d = resolve(raw);
    // the mount the directory lives on, and the directory as that filesystem names it
    const home = table.filter((m) => d === m.mountpoint || d.startsWith(m.mountpoint === "/" ? "/" : `${m.mountpoint}/`)).at(-1);
    const rel = home ? join(home.root, relative(home.mountpoint, d)) : undefined;
    for (const m of table) {
      if (m.mountpoint === d) return true;
      if (m.fstype === "overlay" && m.superOptions.split(",").some((o) => /^(lowerdir|upperdir|workdir)=/.test(o) && o.slice(o.indexOf("=") + 1).split(":").includes(d))) return true;
      if (home && rel && m !== home && m.device === home.device && (m.root === rel || m.root.startsWith(`${rel}/`))) return true;
    }
  }
  return false;
}

/** Whether something is mounted at exactly `path`. */
export async function isMountpoint(path: string): Promise<boolean> {
  return (await findMount(path)) !== undefined;
}

/**
 * Unmount `target`. With `lazy`, detach it even while busy (`umount -l`).
 * Rejects with `ShoalError` (`SHOAL_ERR_MOUNT`) when umount fails, e.g.
 * because the mount is busy or nothing is mounted there.
 */
export async function unmountPath(target: string, opts: { lazy?: boolean; signal?: AbortSignal } = {}): Promise<void> {
  // -c: the path is absolute already, and canonicalising it would stat a mount that may not answer
  await runCommand("umount", ["-c", ...(opts.lazy ? ["-l"] : []), resolve(target)], { signal: opts.signal });
}

/** Options of {@link mountOverlay}. */
export interface OverlayOptions {
  /** Layer directories, top layer first (overlayfs order). */
  lowerdirs: readonly string[];
  target: string;
  /** Writable upper directory; without it the overlay is read-only. Needs `workdir` on the same filesystem. */
  upperdir?: string;
  workdir?: string;
  /** Extra overlay options, e.g. ["index=off"]. */
  options?: readonly string[];
  signal?: AbortSignal;
}

/** Longest option string mount(2) accepts (one page, less the terminating NUL). */
const MAX_MOUNT_DATA = 4095;

function checkPath(p: string): void {
  if (/[,:\\\n]/.test(p)) throw new InvalidArgumentError(`overlay paths must not contain ',', ':', '\\' or newlines: ${JSON.stringify(p)}`);
}

function commonDir(paths: readonly string[]): string {
  let common = dirname(paths[0]!);
  while (!paths.every((p) => p === common || p.startsWith(common === sep ? sep : `${common}${sep}`))) common = dirname(common);
  return common;
}

/**
 * Mount an overlay of `lowerdirs` at `target` (`mount -t overlay`), read-only
 * when there is no `upperdir`. A single lower directory without an upper one
 * is bind-mounted read-only instead (overlayfs needs two lowers then).
 * When the option string would exceed a page, paths are passed relative to
 * their common parent (as containerd does). Rejects with
 * `InvalidArgumentError` for paths overlayfs cannot take and `ShoalError`
 * (`SHOAL_ERR_MOUNT`) when mount fails.
 */
export async function mountOverlay(opts: OverlayOptions): Promise<void> {
  const lowers = opts.lowerdirs.map((d) => resolve(d));
  if (lowers.length === 0) throw new InvalidArgumentError("mountOverlay needs at least one lower directory");
  if ((opts.upperdir === undefined) !== (opts.workdir === undefined)) throw new InvalidArgumentError("upperdir and workdir go together");
  const target = resolve(opts.target);
  const upper = opts.upperdir === undefined ? undefined : resolve(opts.upperdir);
  const work = opts.workdir === undefined ? undefined : resolve(opts.workdir);
  const all = [...lowers, ...(upper ? [upper, work!] : [])];
  all.forEach(checkPath);
  if (lowers.length === 1 && !upper) {
    await runCommand("mount", ["--bind", "-o", "ro", lowers[0]!, target], { signal: opts.signal });
    return;
  }
  const build = (rel: (p: string) => string): string =>
    [
      `lowerdir=${lowers.map(rel).join(":")}`,
      ...(upper ? [`upperdir=${rel(upper)}`, `workdir=${rel(work!)}`] : []),
      ...(opts.options ?? []),
    ].join(",");
  let data = build((p) => p);
  let cwd: string | undefined;
  if (data.length > MAX_MOUNT_DATA) {
    cwd = commonDir(all);
    data = build((p) => relative(cwd!, p) || ".");
    if (data.length > MAX_MOUNT_DATA) throw new InvalidArgumentError(`overlay options are ${data.length} bytes even with relative paths (limit ${MAX_MOUNT_DATA})`);
  }
  await runCommand("mount", ["-t", "overlay", "-o", upper ? data : `ro,${data}`, "overlay", target], { signal: opts.signal, cwd });
}
