import { InvalidArgumentError } from "@shoal/base";
import { readFile } from "node:fs/promises";

/**
 * The chunks an image reads at startup, per layer, as recorded by an agent
 * (`shoal startup-order`) and embedded into a lazy image by
 * `shoal convert --startup-order FILE`. Layers are keyed by the digest of
 * the original (source) layer; chunk indexes assume `chunkSize`.
 */
export interface StartupOrder {
  version: 1;
  chunkSize: number;
  layers: Record<string, number[]>;
}

/** Read and check a startup order file. */
export async function readStartupOrder(path: string): Promise<StartupOrder> {
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new InvalidArgumentError(`cannot read startup order ${path}: ${(err as Error).message}`, { cause: err });
  }
  const o = doc as Partial<StartupOrder>;
  const ok = o && o.version === 1 && Number.isSafeInteger(o.chunkSize) && typeof o.layers === "object" && o.layers !== null
    && Object.entries(o.layers).every(([k, v]) => /^sha256:[0-9a-f]{64}$/.test(k) && Array.isArray(v) && v.every((c) => Number.isSafeInteger(c) && c >= 0));
  if (!ok) throw new InvalidArgumentError(`${path} is not a shoal startup order (version 1, chunkSize, layers: {sha256:...: [chunk, ...]})`);
  return o as StartupOrder;
}
