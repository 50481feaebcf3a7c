/** `shoal preheat`: pull a whole image into the supernodes before a peak. */
import { BadRequestError, ShoalError, sleep } from "@shoal/base";
import { SupernodeCallError, type SupernodeClient } from "./client.ts";
import type { Credentials } from "@shoal/oci";
import { SupernodeSet } from "./supernode-set.ts";

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
  /** Registry credentials passed to the supernodes (and by them to the registry). Never logged. */
  credentials?: Credentials;
  signal?: AbortSignal;
  /** Called after each poll round with the summed progress. */
  onProgress?(p: PreheatProgress): void;
  /** Poll interval, ms. Default 500. */
  pollMs?: number;
}

/**
 * Post a preheat job for `image` to every supernode (each fetches the
 * chunks it owns by rendezvous hashing), poll until all are done, calling
 * `onProgress` with the sums. Resolves with the final progress; rejects
 * with `SHOAL_ERR_PREHEAT_FAILED` (naming the supernode and its error code)
 * as soon as any job fails or a supernode refuses the job, or with
 * `SHOAL_ERR_SUPERNODE_UNAVAILABLE` when a supernode cannot be reached.
 */
export async function preheat(opts: PreheatOptions): Promise<PreheatProgress> {
  const nodes = new SupernodeSet({ urls: opts.supernodes }).all();
  if (nodes.length === 0) throw new BadRequestError("preheat: no supernodes given");
  const call = { ...(opts.signal ? { signal: opts.signal } : {}), ...(opts.credentials ? { credentials: opts.credentials } : {}) };
  const refused = (n: SupernodeClient) => (err: unknown): never => {
    if (err instanceof SupernodeCallError && err.code === "SHOAL_ERR_SUPERNODE_REJECTED") {
      throw new ShoalError("SHOAL_ERR_PREHEAT_FAILED", `${n.url}: preheat refused: ${err.remoteCode ?? `HTTP ${err.status}`}: ${err.message}`, { cause: err });
    }
    throw err;
  };
  const req = { image: opts.image, ...(opts.platform ? { platform: opts.platform } : {}) };
  const ids = await Promise.all(nodes.map((n) => n.startPreheat(req, call).catch(refused(n))));
  for (;;) {
    const statuses = await Promise.all(nodes.map((n, i) => n.preheatStatus(ids[i]!, call).catch(refused(n))));
    const p: PreheatProgress = { chunksDone: 0, chunksTotal: 0, bytesDone: 0, bytesTotal: 0, supernodesDone: 0, supernodes: nodes.length };
    statuses.forEach((s, i) => {
      if (s.state === "failed") {
        throw new ShoalError("SHOAL_ERR_PREHEAT_FAILED", `${nodes[i]!.url}: preheat failed: ${s.error?.code ?? "unknown"}: ${s.error?.message ?? ""}`);
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
