/**
 * Startup traces: what the first seconds of an image's first run on some
 * host read, as byte ranges of each lazy layer's uncompressed tar stream,
 * in the order first read. The first host sends its trace to the
 * supernodes (keyed by the image's repository and manifest digest); every
 * later host fetches it at pull time and prefetches those ranges first. A
 * trace is only an order hint: the chunks it leads to are verified like any
 * other, and a missing, foreign or malformed trace costs nothing but the hint.
 */
import { BadRequestError, isSha256Digest } from "@shoal/base";

/** Most layers a trace may name. */
export const MAX_TRACE_LAYERS = 256;
/** Most ranges a trace may hold, over all its layers. */
export const MAX_TRACE_RANGES = 65_536;
/** Largest trace body, bytes of JSON. */
export const MAX_TRACE_BYTES = 2 << 20;

/** A startup trace; see the module comment. */
export interface StartupTrace {
  version: 1;
  /** Manifest digest of the image the trace was recorded on. */
  image: string;
  /** Blob digests of the lazy layers it read, each once. */
  layers: string[];
  /** `[layer, offset, length]`: bytes of `layers[layer]`'s uncompressed tar stream (length > 0), in the order first read. */
  ranges: Array<[layer: number, offset: number, length: number]>;
}

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/** Parse a trace (untrusted JSON); throws `BadRequestError` naming what is wrong. */
export function parseStartupTrace(body: unknown): StartupTrace {
  const bad = (why: string) => new BadRequestError(`startup trace: ${why}`);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw bad("body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (b.version !== 1) throw bad("version must be 1");
  if (typeof b.image !== "string" || !isSha256Digest(b.image)) throw bad("image must be a sha256:<hex> manifest digest");
  if (!Array.isArray(b.layers) || b.layers.length > MAX_TRACE_LAYERS) throw bad(`layers must be an array of at most ${MAX_TRACE_LAYERS} digests`);
  const layers = b.layers.map((d: unknown, i) => {
    if (typeof d !== "string" || !isSha256Digest(d)) throw bad(`layer ${i} must be a sha256:<hex> digest`);
    return d;
  });
  if (new Set(layers).size !== layers.length) throw bad("a layer is named twice");
  if (!Array.isArray(b.ranges) || b.ranges.length > MAX_TRACE_RANGES) throw bad(`ranges must be an array of at most ${MAX_TRACE_RANGES}`);
  const ranges = b.ranges.map((r: unknown, i): [number, number, number] => {
    if (!Array.isArray(r) || r.length !== 3 || !isCount(r[0]) || !isCount(r[1]) || !isCount(r[2]) || r[2] === 0 || r[0] >= layers.length) {
      throw bad(`range ${i} must be [layer, offset, length] with a layer of the list and length > 0`);
    }
    return [r[0], r[1], r[2]];
  });
  return { version: 1, image: b.image, layers, ranges };
}

/**
 * Records reads as a trace: `read(layer, offset, length)` in the order they
 * happen; a read that continues or falls inside the layer's latest range
 * extends it rather than adding one. Past `MAX_TRACE_RANGES` it records no more.
 */
export class TraceRecorder {
  private readonly layers = new Map<string, { n: number; last: [number, number, number] | undefined }>();
  private readonly ranges: Array<[number, number, number]> = [];

  read(layer: string, offset: number, length: number): void {
    if (length <= 0) return;
    let l = this.layers.get(layer);
    const last = l?.last;
    if (last && offset >= last[1] && offset <= last[1] + last[2]) {
      last[2] = Math.max(last[2], offset + length - last[1]);
      return;
    }
    if (this.ranges.length >= MAX_TRACE_RANGES || (!l && this.layers.size >= MAX_TRACE_LAYERS)) return;
    if (!l) this.layers.set(layer, (l = { n: this.layers.size, last: undefined }));
    l.last = [l.n, offset, length];
    this.ranges.push(l.last);
  }

  /** True when nothing was read. */
  get empty(): boolean {
    return this.ranges.length === 0;
  }

  /** The trace of image `image` (manifest digest). */
  trace(image: string): StartupTrace {
    return { version: 1, image, layers: [...this.layers.keys()], ranges: this.ranges.map((r) => [r[0], r[1], r[2]]) };
  }
}
