/**
 * Normalise a tar entry name to shoal's canonical form: no leading `./`,
 * no trailing `/`, no empty or `.` components; the layer root is `""`.
 * Absolute names and names with a `..` component are rejected through
 * `fail(message)`, which must return the error to throw.
 */
export function normalizeTarPath(raw: string, fail: (message: string) => Error): string {
  if (raw.includes("\0")) throw fail(`path contains a NUL byte`);
  if (raw.startsWith("/")) throw fail(`absolute path ${JSON.stringify(raw)}`);
  const parts: string[] = [];
  for (const part of raw.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") throw fail(`path ${JSON.stringify(raw)} escapes the layer root`);
    parts.push(part);
  }
  return parts.join("/");
}

/**
 * True when `path` is in the form `normalizeTarPath` gives: relative, no
 * empty, `.` or `..` component, no NUL (the root is `""`). What an index
 * decoder checks of paths it did not normalise itself.
 */
export function isNormalizedTarPath(path: string): boolean {
  if (path === "") return true;
  if (path.charCodeAt(0) === 47 || path.charCodeAt(path.length - 1) === 47 || path.includes("\0") || path.includes("//")) return false;
  if (path === "." || path === ".." || path.startsWith("./") || path.startsWith("../") || path.endsWith("/.") || path.endsWith("/..")) return false;
  return !path.includes("/./") && !path.includes("/../");
}

/** Parent of a normalised path (`""` for top-level names and for the root). */
export function parentPath(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/** Last component of a normalised path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** Join a normalised directory path and a name. */
export function joinPath(dir: string, name: string): string {
  return dir === "" ? name : `${dir}/${name}`;
}
