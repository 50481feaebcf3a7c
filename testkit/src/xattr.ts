/**
 * Reading extended attributes of many paths with getfattr(1) (package
 * "attr"); Node has no xattr API.
 */
import { haveCommand, run } from "./exec.ts";

/** Attribute name → value as lowercase hex (no "0x"; "" for an empty value). */
export type Xattrs = Record<string, string>;

/** Whether getfattr is installed. */
export function haveGetfattr(): Promise<boolean> {
  return haveCommand("getfattr");
}

/** Undoes getfattr's quoting of path bytes as backslash + 3 octal digits. */
function unescapePath(s: string): string {
  const b = Buffer.from(s, "utf8");
  const out: number[] = [];
  for (let i = 0; i < b.length; i++) {
    const c = b[i] ?? 0;
    if (c === 0x5c && i + 3 < b.length) {
      const oct = b.subarray(i + 1, i + 4).toString("latin1");
      if (/^[0-7]{3}$/.test(oct)) {
        out.push(parseInt(oct, 8));
        i += 3;
        continue;
      }
    }
    out.push(c);
  }
  return Buffer.from(out).toString("utf8");
}

/** Parses `getfattr -d -m - -e hex --absolute-names` output into path → xattrs. */
export function parseGetfattr(output: string): Map<string, Xattrs> {
  const result = new Map<string, Xattrs>();
  let current: Xattrs | undefined;
  for (const line of output.split("\n")) {
    if (line.startsWith("# file: ")) {
      current = {};
      result.set(unescapePath(line.slice("# file: ".length)), current);
    } else if (line !== "" && current) {
      const eq = line.indexOf("=");
      const name = eq < 0 ? line : line.slice(0, eq);
      const raw = eq < 0 ? "" : line.slice(eq + 1);
      const value = raw.startsWith("0x") ? raw.slice(2).toLowerCase() : raw === '""' ? "" : Buffer.from(raw, "utf8").toString("hex");
      current[name] = value;
    }
  }
  return result;
}

/**
 * Extended attributes (all namespaces readable by the caller; trusted.* needs
 * root) of `paths` (absolute), without following symlinks. Paths without
 * attributes are absent from the result. Runs getfattr in batches of
 * `batch` paths; throws if getfattr is missing or fails.
 */
export async function readXattrs(paths: readonly string[], opts: { batch?: number; signal?: AbortSignal } = {}): Promise<Map<string, Xattrs>> {
  const batch = opts.batch ?? 500;
  const result = new Map<string, Xattrs>();
  for (let i = 0; i < paths.length; i += batch) {
    const chunk = paths.slice(i, i + batch);
    const { stdout } = await run("getfattr", ["-h", "-d", "-m", "-", "--absolute-names", "-e", "hex", "--", ...chunk], { signal: opts.signal });
    for (const [p, x] of parseGetfattr(stdout)) result.set(p, x);
  }
  return result;
}
