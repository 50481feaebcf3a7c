/**
 * The agent's status page (`GET /` of its metrics listener) and its data
 * (`GET /v1/page`): images with the share of their chunks held here and
 * prefetch progress, mounts, snapshots, bytes by source over the last
 * minutes, peers with bytes up and down, recent errors.
 *
 * Access: the control API is `ROOT/agent.sock`, which only those who may
 * read the agent's root can reach; the page's data carries the same things,
 * so it asks for the same right. The agent writes a random token to
 * `ROOT/web.token` (mode 0600) and the data answers only a request bearing
 * it (`Authorization: Bearer TOKEN`; the page reads it from its URL's
 * fragment, `#token=`, which browsers never send to a server). The page
 * itself (`GET /`) holds no data and needs no token.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import { ShoalError } from "@shoal/base";
import type { SourceTotals } from "@shoal/fetch";
import { statusPageHtml, type RecentEvent, type Sample, type StatusPage } from "@shoal/service";
import type { ImageStatus } from "./active-images.ts";
import type { MountRecord } from "./mounts.ts";

/** The sources the chart draws, as the page names them: the local store, peers, supernodes, the origin registry. */
export const PAGE_SOURCES = ["store", "peer", "supernode", "origin"] as const;

/** One sample of the chart: cumulative chunk bytes by page source. */
export type SourceSample = Record<(typeof PAGE_SOURCES)[number], number>;

/** Cumulative bytes by page source from the fetcher's totals (its `cache` is the store). */
export function sourceSample(totals: SourceTotals): SourceSample {
  return { store: totals.cache?.bytes ?? 0, peer: totals.peer?.bytes ?? 0, supernode: totals.supernode?.bytes ?? 0, origin: totals.origin?.bytes ?? 0 };
}

/** What the page draws from. */
export interface AgentPageComponents {
  /** Images in use and mount records (`MountManager.status`), read once per request. */
  mounts: () => { images: ImageStatus[]; mounts: MountRecord[] };
  snapshots: () => Promise<Array<{ kind: string }>>;
  sources: () => SourceTotals;
  history: { samples(): Array<Sample<SourceSample>> };
  store: () => { chunks: number; bytes: number; capacityBytes: number };
  errors: () => RecentEvent[];
  mirror?: string;
  /** Present when the peer swarm is on. */
  swarm?: () => { peerId: string; connected: number; peers: Array<{ peerId: string; bytesUp: number; bytesDown: number; last: number }> };
}

const script = readFileSync(new URL("../../web/page.js", import.meta.url), "utf8");

/** The token file under the agent's root. */
export const PAGE_TOKEN_FILE = "web.token";

/** The page token of the agent at `root`: read from `ROOT/web.token`, or made and written there (0600) on first start. */
export async function pageToken(root: string): Promise<string> {
  const path = join(root, PAGE_TOKEN_FILE);
  const existing = await readFile(path, "utf8").then((t) => t.trim(), () => "");
  if (/^[0-9a-f]{64}$/.test(existing)) return existing;
  const token = randomBytes(32).toString("hex");
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  return token;
}

/** Throws SHOAL_ERR_PAGE_TOKEN unless `req` bears `token`. */
export function checkPageToken(req: IncomingMessage, token: string): void {
  const given = /^Bearer (\S+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "";
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new ShoalError("SHOAL_ERR_PAGE_TOKEN", given ? "wrong page token: open the URL `shoal status` prints" : "no page token: open the URL `shoal status` prints (it carries #token=)");
  }
}

/** The agent's `StatusPage`, answering only requests bearing `token`. */
export function agentPage(c: AgentPageComponents, token: string): StatusPage {
  return {
    html: statusPageHtml("shoal agent", script),
    async data(req) {
      checkPageToken(req, token);
      const snapshots: Record<string, number> = {};
      for (const s of await c.snapshots()) snapshots[s.kind] = (snapshots[s.kind] ?? 0) + 1;
      const m = c.mounts();
      return {
        kind: "agent",
        now: Date.now(),
        images: m.images,
        mounts: m.mounts.map((m) => ({ mountpoint: m.mountpoint, image: m.image, digest: m.digest, mountedAt: m.mountedAt })),
        snapshots,
        sources: sourceSample(c.sources()),
        history: c.history.samples(),
        store: c.store(),
        errors: c.errors().slice(0, 20),
        ...(c.mirror ? { mirror: c.mirror } : {}),
        ...(c.swarm ? { swarm: c.swarm() } : {}),
      };
    },
  };
}
