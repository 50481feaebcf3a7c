/**
 * Where `shoal mount` may put an image: never over the host's system
 * directories, the agent's own root, or inside (or over) another shoal
 * mount. A pure check of canonical absolute paths; `MountManager` does the
 * file system's part (exists, a directory, empty, not a mountpoint).
 */
import { isAbsolute, normalize } from "node:path";
import { InvalidArgumentError, ShoalError } from "@shoal/base";

/** Directories of the host that no image may cover (each exactly; their subdirectories are the caller's business). */
export const SYSTEM_DIRS: ReadonlySet<string> = new Set([
  "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/proc", "/root", "/run", "/sbin",
  "/srv", "/sys", "/tmp", "/usr", "/var", "/usr/bin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libexec", "/usr/local", "/usr/sbin",
  "/usr/share", "/usr/include", "/var/lib", "/var/log", "/var/cache", "/var/tmp", "/var/run", "/var/spool", "/run/lock",
]);

/** A mountpoint shoal refuses (a system directory, the agent's root, a shoal mount's inside). */
export class MountpointRefusedError extends ShoalError {
  constructor(message: string) {
    super("SHOAL_ERR_MOUNTPOINT_REFUSED", message);
  }
}

/** `path` equals `dir` or lies inside it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

/** A mountpoint as an API caller gave it: absolute and clean (`/a/b`, no `.`, `..`, `//` or trailing `/`), or an error. */
export function checkMountpointSyntax(path: string): string {
  if (!isAbsolute(path)) throw new InvalidArgumentError(`mountpoint ${JSON.stringify(path)} is not an absolute path`);
  if (path.includes("\0")) throw new InvalidArgumentError("mountpoint contains a NUL byte");
  const trimmed = path.length > 1 ? path.replace(/\/+$/, "") : path;
  const clean = normalize(trimmed);
  if (clean !== trimmed) throw new InvalidArgumentError(`mountpoint ${JSON.stringify(path)} is not a clean path (use ${clean})`);
  return clean;
}

/**
 * Refuses `mountpoint` (canonical: symlinks resolved) when it is a system
 * directory, the agent's `root`, inside it or above it, or inside or above
 * one of the shoal mounts in `mounted`.
 */
export function checkMountpointPolicy(mountpoint: string, ctx: { root: string; mounted: Iterable<string> }): void {
  if (SYSTEM_DIRS.has(mountpoint)) throw new MountpointRefusedError(`${mountpoint} is a system directory; shoal mounts only elsewhere`);
  if (within(mountpoint, ctx.root)) throw new MountpointRefusedError(`${mountpoint} is inside the agent's root ${ctx.root}`);
  if (within(ctx.root, mountpoint)) throw new MountpointRefusedError(`${mountpoint} holds the agent's root ${ctx.root}; a mount there would hide it`);
  for (const m of ctx.mounted) {
    if (within(mountpoint, m)) throw new MountpointRefusedError(`${mountpoint} is inside the shoal mount ${m}`);
    if (within(m, mountpoint)) throw new MountpointRefusedError(`${mountpoint} holds the shoal mount ${m}; a mount there would hide it`);
  }
}
