/**
 * The supernode's status page (`GET /` of its metrics listener) and its data
 * (`GET /v1/page`): cache and hit rate, origin egress against bytes served,
 * preheat jobs, the tracker's view, the other supernodes. The data follows
 * the API's access rule: an image's name is shown only to a caller the
 * registry lets read it (the chunk API's access check, with the request's
 * `Authorization: Basic` credentials, or none), so a caller without the
 * right credentials sees no private repository names. Layer digests and
 * counts are not secret and are shown to all.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { LruMap } from "@shoal/base";
import { statusPageHtml, type Sampler, type StatusPage } from "@shoal/service";
import { parseBasicAuth, type PreheatStatus } from "@shoal/swarm";
import type { AccessCheck } from "./access.ts";
import type { SupernodeMetrics } from "./metrics.ts";
import type { PeerHealth } from "./peer-health.ts";
import type { PeerTable } from "./peer-table.ts";
import type { PreheatJobs } from "./preheat.ts";

/** One sample of the page's chart: cumulative bytes from origins and served. */
export interface SupernodeSample {
  origin: number;
  served: number;
}

/** What the page draws from. */
export interface SupernodePageComponents {
  url: () => string;
  store: () => { chunks: number; bytes: number; capacityBytes: number };
  metrics: SupernodeMetrics;
  history: Sampler<SupernodeSample>;
  preheat: PreheatJobs;
  tracker: PeerTable;
  access: AccessCheck;
  supernodes: () => PeerHealth[];
  /** Its own chunk peer, when it joined the swarm. */
  swarm?: () => { peerId: string; connected: number; bytesUploaded: number };
}

/** A preheat job as the page shows it: the image only when the caller may read it. */
export interface PageJob {
  id: string;
  image?: string;
  started: number;
  status: PreheatStatus;
}

/** How long one caller's visibility of one job is remembered, ms (so a page polling every second costs the registry one check per job per this). */
const VISIBILITY_TTL_MS = 30_000;

const script = readFileSync(new URL("../web/page.js", import.meta.url), "utf8");

/** The supernode's `StatusPage`. */
export function supernodePage(c: SupernodePageComponents): StatusPage {
  const visible = new LruMap<string, { ok: boolean; until: number }>({ maxEntries: 4096 });
  const mayRead = async (job: ReturnType<PreheatJobs["list"]>[number], req: IncomingMessage): Promise<boolean> => {
    const credentials = parseBasicAuth(req.headers.authorization);
    const who = createHash("sha256").update(req.headers.authorization ?? "").digest("hex");
    const key = `${job.id}\0${who}`;
    const seen = visible.get(key);
    if (seen && seen.until > Date.now()) return seen.ok;
    const layer = job.layers[0];
    let ok = false;
    if (layer) ok = await c.access.check(layer, credentials, { signal: AbortSignal.timeout(5_000) }).then(() => true, () => false);
    // a job whose layers are not known yet names no blob to check against: hidden until they are
    if (layer) visible.set(key, { ok, until: Date.now() + VISIBILITY_TTL_MS });
    return ok;
  };
  return {
    html: statusPageHtml("shoal supernode", script),
    async data(req) {
      const jobs = c.preheat.list().slice(0, 50);
      const shown = await Promise.all(jobs.map(async (j): Promise<PageJob & { layers: string[] }> => {
        const ok = await mayRead(j, req);
        // a failed job's error names what it reached (the manifest's URL): only for the registry's users
        const status = ok || !j.status.error ? j.status : { ...j.status, error: { code: j.status.error.code, message: "the job failed (details for callers the registry lets read the image)" } };
        return { id: j.id, started: j.started, status, ...(ok ? { image: j.image } : {}), layers: ok ? j.layers.map((l) => l.digest) : [] };
      }));
      // layer -> the images (visible to this caller) it belongs to
      const imagesOf = new Map<string, string[]>();
      for (const j of shown) for (const l of j.layers) if (j.image && !(imagesOf.get(l) ?? []).includes(j.image)) imagesOf.set(l, [...(imagesOf.get(l) ?? []), j.image]);
      return {
        kind: "supernode",
        url: c.url(),
        now: Date.now(),
        store: c.store(),
        totals: c.metrics.totals(),
        history: c.history.samples(),
        preheat: shown.map(({ layers: _layers, ...j }) => j),
        tracker: { ...c.tracker.stats(), layers: c.tracker.layerView(50).map((l) => ({ ...l, images: imagesOf.get(l.layer) ?? [] })) },
        supernodes: c.supernodes(),
        ...(c.swarm ? { swarm: c.swarm() } : {}),
      };
    },
  };
}
