// What every bench does before it measures: the realistic image from its cache, and a process environment without proxies.
import { fileURLToPath } from "node:url";
import { buildRealisticImage, type RealisticImage } from "@shoal/testkit";

/** Where the realistic image (debootstrap minbase + python3 + nginx) is cached: `SHOAL_BENCH_CACHE`, else `.cache/realistic-image` in the checkout. */
export const REALISTIC_IMAGE_CACHE = process.env.SHOAL_BENCH_CACHE ?? fileURLToPath(new URL("../../.cache/realistic-image", import.meta.url));

/** The realistic image, built on first use (about a minute) and cached in `cacheDir`. */
export function realisticImage(log: (s: string) => void, cacheDir: string = REALISTIC_IMAGE_CACHE): Promise<RealisticImage> {
  return buildRealisticImage(cacheDir, { log });
}

const PROXY_VARS = ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"];

/** Drop the proxy variables from this process's environment (children talk to namespace addresses only: no proxy may redirect them); returns the restore. */
export function withoutProxies(): () => void {
  const saved: Record<string, string | undefined> = {};
  for (const k of PROXY_VARS) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  return () => {
    for (const [k, v] of Object.entries(saved)) if (v !== undefined) process.env[k] = v;
  };
}
