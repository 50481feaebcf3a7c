/** Platforms (os/architecture/variant) and choosing a manifest from an index. */
import { InvalidArgumentError } from "@shoal/base";
import { NoMatchingPlatformError } from "./errors.ts";
import type { Descriptor, ImageIndex } from "./manifest.ts";

/** An OCI platform, with the JSON field names of the image spec. */
export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  "os.version"?: string;
  "os.features"?: string[];
}

const ARCH_FROM_NODE: Record<string, string> = {
  x64: "amd64",
  arm64: "arm64",
  arm: "arm",
  ia32: "386",
  ppc64: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
  loong64: "loong64",
  mips64el: "mips64le",
  mipsel: "mipsle",
};

/**
 * The platform of this host as an image platform: os `linux`, architecture
 * from `process.arch` (x64 → amd64, ia32 → 386, ...), variant `v8` for arm64
 * and `v6`/`v7` for arm (from Node's build configuration).
 */
export function hostPlatform(): Platform {
  const architecture = ARCH_FROM_NODE[process.arch] ?? process.arch;
  const platform: Platform = { os: "linux", architecture };
  if (architecture === "arm64") platform.variant = "v8";
  if (architecture === "arm") {
    const armVersion = (process.config.variables as Record<string, unknown>)["arm_version"];
    platform.variant = `v${typeof armVersion === "string" || typeof armVersion === "number" ? armVersion : "7"}`;
  }
  return platform;
}

/** Parses `os/arch[/variant]` (e.g. `linux/arm/v7`). Throws `TypeError` on a malformed string. */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.length === 0)) {
    throw new InvalidArgumentError(`invalid platform ${JSON.stringify(s)}: want os/arch[/variant]`);
  }
  const platform: Platform = { os: parts[0]!, architecture: parts[1]! };
  if (parts[2] !== undefined) platform.variant = parts[2];
  return platform;
}

/** `os/arch[/variant]` for messages. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ""}`;
}

/** Default variant when a platform names none: arm64 is v8, amd64 is v1. */
function normalisedVariant(p: Platform): string | undefined {
  if (p.variant) return p.variant;
  if (p.architecture === "arm64") return "v8";
  if (p.architecture === "amd64") return "v1";
  return undefined;
}

/** Variants a host of `want` runs, best first (arm v7 also runs v6 and v5; amd64 v3 runs v2, v1). */
function compatibleVariants(want: Platform): (string | undefined)[] {
  const v = normalisedVariant(want);
  const m = /^v(\d+)$/.exec(v ?? "");
  if ((want.architecture === "arm" || want.architecture === "amd64") && m) {
    const n = Number(m[1]);
    const out: string[] = [];
    for (let i = n; i >= (want.architecture === "arm" ? 5 : 1); i--) out.push(`v${i}`);
    return out;
  }
  return [v];
}

/**
 * Picks the manifest for `platform` (default: this host) from an index.
 * `os` and `architecture` must match exactly; among variants, an exact match
 * wins, then the newest compatible one (arm v7 takes v6, amd64 v2 takes v1).
 * A missing variant means v8 for arm64 and v1 for amd64. Throws
 * `NoMatchingPlatformError` listing the index's platforms when none fits.
 */
export function selectPlatform(index: ImageIndex, platform: Platform = hostPlatform()): Descriptor {
  const candidates = index.manifests.filter(
    (d) => d.platform !== undefined && d.platform.os === platform.os && d.platform.architecture === platform.architecture,
  );
  for (const variant of compatibleVariants(platform)) {
    const found = candidates.find((d) => normalisedVariant(d.platform!) === variant);
    if (found) return found;
  }
  const available = index.manifests.filter((d) => d.platform !== undefined).map((d) => formatPlatform(d.platform!));
  throw new NoMatchingPlatformError(formatPlatform(platform), [...new Set(available)]);
}
