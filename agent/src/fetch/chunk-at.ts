import type { RemoteLayer } from "./fetcher.ts";

/** Index of the chunk of `layer` whose compressed bytes hold blob offset `offset` (binary search). */
export function chunkAtBlobOffset(layer: RemoteLayer, offset: number): number {
  let lo = 0;
  let hi = layer.index.chunkCount - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (layer.index.chunk(mid).offset <= offset) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
