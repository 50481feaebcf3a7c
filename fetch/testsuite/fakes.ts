/** In-memory fakes of the read path's seams, held to the same conformance suites as the real implementations. */
import { gunzipSync } from "node:zlib";
import { digestOf, DigestMismatchError } from "@shoal/base";
import { checkRun, runBytes, splitRun, type ChunkCache, type ChunkSource, type FetchChunksOptions, type InflateOptions, type RemoteLayer } from "../src/index.ts";

/** Chunks in memory; compressed-only ones are inflated on their first raw read, as the chunk store does. */
export class MemoryChunkCache implements ChunkCache {
  /** Stored bytes by digest: inflated, or compressed while `compressedOnly` holds the digest. */
  readonly map = new Map<string, Buffer>();
  readonly compressedOnly = new Set<string>();
  /** How each chunk was first stored. */
  readonly stored = new Map<string, "raw" | "compressed">();

  has(d: string): boolean {
    return this.map.has(d);
  }

  hasRaw(d: string): boolean {
    return this.map.has(d) && !this.compressedOnly.has(d);
  }

  async put(d: string, z: Uint8Array, raw: Uint8Array, opts: { verified?: boolean } = {}): Promise<void> {
    this.verify(d, z, opts.verified);
    if (this.map.has(d)) return;
    this.map.set(d, Buffer.from(raw));
    this.stored.set(d, "raw");
  }

  async putCompressed(d: string, z: Uint8Array, _rawSize: number, opts: { verified?: boolean } = {}): Promise<void> {
    this.verify(d, z, opts.verified);
    if (this.map.has(d)) return;
    this.map.set(d, Buffer.from(z));
    this.compressedOnly.add(d);
    this.stored.set(d, "compressed");
  }

  async readRaw(d: string, offset: number, length: number, opts: InflateOptions = {}): Promise<Buffer | undefined> {
    await this.inflate(d, opts);
    const b = this.map.get(d);
    if (!b) return undefined;
    const start = Math.min(offset, b.length);
    return b.subarray(start, Math.min(b.length, start + length));
  }

  async inflateStored(d: string, opts: InflateOptions = {}): Promise<boolean> {
    await this.inflate(d, opts);
    return this.map.has(d);
  }

  private async inflate(d: string, opts: InflateOptions): Promise<void> {
    if (!this.compressedOnly.has(d)) return;
    const z = this.map.get(d)!;
    const raw = opts.inflate ? await opts.inflate(z, 0) : gunzipSync(z);
    if (this.compressedOnly.delete(d)) this.map.set(d, raw);
  }

  private verify(d: string, z: Uint8Array, verified: boolean | undefined): void {
    if (verified) return;
    const actual = digestOf(z);
    if (actual !== d) throw new DigestMismatchError(`chunk ${d}`, d, actual);
  }
}

/** Options of a `MemorySource`. */
export interface MemorySourceInit {
  name?: string;
  lastResort?: boolean;
  /** Wait this long before each answer, ms (abortable). */
  delayMs?: number;
  /** Never answer (until aborted). */
  hang?: boolean;
  /** Flip a byte of the next N answers. */
  corrupt?: number;
}

/** A source serving `blob`'s chunks from memory, counting the runs it was asked for. */
export class MemorySource implements ChunkSource {
  readonly name: string;
  readonly lastResort: boolean;
  /** Every run asked for, `[first, last]`. */
  readonly runs: Array<[number, number]> = [];
  /** Chunk positions reported bad (`reportBad`). */
  readonly reported: number[] = [];
  /** Wait before each answer, ms (tests change it between requests). */
  delayMs: number;
  private readonly blob: Uint8Array;
  private readonly init: MemorySourceInit;
  private corrupt: number;

  constructor(blob: Uint8Array, init: MemorySourceInit = {}) {
    this.blob = blob;
    this.init = init;
    this.name = init.name ?? "origin";
    this.lastResort = init.lastResort ?? false;
    this.corrupt = init.corrupt ?? 0;
    this.delayMs = init.delayMs ?? 0;
  }

  /** Chunk positions asked for one by one (runs of one chunk). */
  get singles(): number[] {
    return this.runs.filter(([a, b]) => a === b).map(([a]) => a);
  }

  reportBad(_layer: RemoteLayer, chunk: number): void {
    this.reported.push(chunk);
  }

  async fetchChunks(layer: RemoteLayer, first: number, last: number, opts: FetchChunksOptions): Promise<Uint8Array[]> {
    checkRun(layer, first, last);
    opts.signal.throwIfAborted();
    this.runs.push([first, last]);
    if (this.init.hang || this.delayMs) {
      await new Promise<void>((resolve, reject) => {
        const t = this.init.hang ? undefined : setTimeout(resolve, this.delayMs);
        opts.signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(opts.signal.reason);
        }, { once: true });
      });
    }
    const { start, end } = runBytes(layer, first, last);
    const bytes = Buffer.from(this.blob.subarray(start, end));
    if (this.corrupt > 0) {
      this.corrupt--;
      bytes[10] = bytes[10]! ^ 0xff;
    }
    return splitRun(layer, first, last, bytes);
  }
}
