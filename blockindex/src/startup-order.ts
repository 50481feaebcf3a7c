import { InvalidArgumentError } from "@shoal/base";

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

/** Check a startup order read from `where` (a file name, for the message); throws `InvalidArgumentError`. */
export function parseStartupOrder(doc: unknown, where: string): StartupOrder {
  const o = doc as Partial<StartupOrder>;
  const ok = o && o.version === 1 && Number.isSafeInteger(o.chunkSize) && typeof o.layers === "object" && o.layers !== null
    && Object.entries(o.layers).every(([k, v]) => /^sha256:[0-9a-f]{64}$/.test(k) && Array.isArray(v) && v.every((c) => Number.isSafeInteger(c) && c >= 0));
  if (!ok) throw new InvalidArgumentError(`${where} is not a shoal startup order (version 1, chunkSize, layers: {sha256:...: [chunk, ...]})`);
  return o as StartupOrder;
}
