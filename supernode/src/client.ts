/** Client side of the supernode API used by the CLI: preheat an image on every supernode. */
import { ShoalError, sleep } from "@shoal/base";
import type { PreheatStatus } from "./preheat.ts";
import { normalizeSupernodeUrl } from "./rendezvous.ts";

/** Summed progress of a preheat over every supernode. */
export interface PreheatProgress {
  chunksDone: number;
  chunksTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Supernodes whose job is done. */
  supernodesDone: number;
  supernodes: number;
}

/** Options of `preheat`. */
export interface PreheatOptions {
  /** Base URLs of every supernode; each preheats the chunks it owns. */
  supernodes: string[];
  /** Image reference, e.g. `registry.example/team/app:v1`. */
  image: string;
  /** `os/arch[/variant]`; default: the supernode's own platform. */
  platform?: string;
  /** `Authorization: Basic …` header passed to the supernodes (and by them to the registry). Never logged. */
  authorization?: string;
  signal?: AbortSignal;
  /** Called after each poll round with the summed progress. */
  onProgress?(p: PreheatProgress): void;
  /** Poll interval, ms. Default 500. */
  pollMs?: number;
}

async function call(url: string, init: RequestInit): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(url, init);
  } catch (err) {
    if ((init.signal as AbortSignal | undefined)?.aborted) throw err;
    throw new ShoalError("SHOAL_ERR_SUPERNODE_UNAVAILABLE", `${new URL(url).origin}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ShoalError(res.status >= 500 ? "SHOAL_ERR_SUPERNODE_UNAVAILABLE" : "SHOAL_ERR_SUPERNODE_PROTOCOL", `${new URL(url).origin}: HTTP ${res.status}, not JSON`);
  }
  if (!res.ok) {
    const e = body as { code?: unknown; message?: unknown };
    throw new ShoalError(
      res.status >= 500 && e.code === "SHOAL_ERR_SHUTTING_DOWN" ? "SHOAL_ERR_SUPERNODE_UNAVAILABLE" : "SHOAL_ERR_PREHEAT_FAILED",
      `${new URL(url).origin}: ${typeof e.code === "string" ? e.code : `HTTP ${res.status}`}: ${typeof e.message === "string" ? e.message : ""}`,
    );
  }
  return body;
}

/**
 * Post a preheat job for `image` to every supernode (each fetches the
 * chunks it owns by rendezvous hashing), poll until all are done, calling
 * `onProgress` with the sums. Resolves with the final progress; rejects
 * with `ShoalError` (`SHOAL_ERR_PREHEAT_FAILED` naming the supernode
 * and its job's error code, or `SHOAL_ERR_SUPERNODE_UNAVAILABLE`) as soon
 * as any job fails or a supernode cannot be reached.
 */
export async function preheat(opts: PreheatOptions): Promise<PreheatProgress> {
  const nodes = [...new Set(opts.supernodes.map(normalizeSupernodeUrl))];
  if (nodes.length === 0) throw new ShoalError("SHOAL_ERR_BAD_REQUEST", "preheat: no supernodes given");
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (opts.authorization) headers.authorization = opts.authorization;
  const body = JSON.stringify({ image: opts.image, ...(opts.platform ? { platform: opts.platform } : {}) });
  const ids = await Promise.all(
    nodes.map(async (n) => {
      const r = (await call(`${n}/v1/preheat`, { method: "POST", headers, body, ...(opts.signal ? { signal: opts.signal } : {}) })) as { id?: unknown };
      if (typeof r.id !== "string") throw new ShoalError("SHOAL_ERR_SUPERNODE_PROTOCOL", `${n}: preheat answer has no id`);
      return r.id;
    }),
  );
  for (;;) {
    const statuses = await Promise.all(
      nodes.map((n, i) => call(`${n}/v1/preheat/${encodeURIComponent(ids[i]!)}`, { headers, ...(opts.signal ? { signal: opts.signal } : {}) }) as Promise<PreheatStatus>),
    );
    const p: PreheatProgress = { chunksDone: 0, chunksTotal: 0, bytesDone: 0, bytesTotal: 0, supernodesDone: 0, supernodes: nodes.length };
    statuses.forEach((s, i) => {
      if (s.state === "failed") {
        throw new ShoalError("SHOAL_ERR_PREHEAT_FAILED", `${nodes[i]}: preheat failed: ${s.error?.code ?? "unknown"}: ${s.error?.message ?? ""}`);
      }
      p.chunksDone += s.chunksDone;
      p.chunksTotal += s.chunksTotal;
      p.bytesDone += s.bytesDone;
      p.bytesTotal += s.bytesTotal;
      if (s.state === "done") p.supernodesDone++;
    });
    opts.onProgress?.(p);
    if (p.supernodesDone === nodes.length) return p;
    await sleep(opts.pollMs ?? 500, opts.signal);
  }
}
