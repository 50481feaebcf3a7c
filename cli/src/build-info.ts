/**
 * Which shoal this is: the version and the commit it was built from.
 * `npm run release` compiles them in (`SHOAL_BUILD`); run from a clone,
 * they come from cli/package.json and the checkout (`git`, when there is
 * one), read only when asked.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A shoal build. */
export interface BuildInfo {
  version: string;
  /** Twelve hex digits of the commit, `-dirty` when the tree had changes; `unknown` outside a checkout. */
  commit: string;
}

declare const SHOAL_BUILD: BuildInfo | undefined;

/** This build's version and commit. */
export function buildInfo(): BuildInfo {
  if (typeof SHOAL_BUILD !== "undefined") return SHOAL_BUILD;
  const dir = fileURLToPath(new URL("..", import.meta.url));
  const { version } = JSON.parse(readFileSync(`${dir}/package.json`, "utf8")) as { version: string };
  try {
    const git = (...args: string[]) => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = git("status", "--porcelain", "--untracked-files=no") !== "";
    return { version, commit: `${git("rev-parse", "--short=12", "HEAD")}${dirty ? "-dirty" : ""}` };
  } catch {
    return { version, commit: "unknown" };
  }
}

/** `shoal VERSION (commit COMMIT)`, as `shoal --version` prints it. */
export function versionLine(info: BuildInfo = buildInfo()): string {
  return `shoal ${info.version} (commit ${info.commit})`;
}
