import { DigestMismatchError, InvalidArgumentError, untilAborted, AbortedError } from "@shoal/base";
import { mkdir, statfs } from "node:fs/promises";
import { gunzipMemberAsync } from "@shoal/blockindex";
import { pino, type Logger } from "pino";
import { DEFAULT_ACCESS_FLUSH_MS, DEFAULT_CAPACITY_BYTES, DEFAULT_MAX_OPEN_FILES, DISK_FULL_SLACK_BYTES } from "./constants.ts";
import { DiskFullError, StoreClosedError } from "./errors.ts";
import { FileHandleCache } from "./file-handle-cache.ts";
import { DurableWriter } from "./durable-writer.ts";
import { errnoCode, isCount, isNoSpace, readAt, tempPathFor, unlinkQuiet } from "./files.ts";
import { chunkPaths, chunksDir, digestHex, sha256Hex, type ChunkPaths } from "./layout.ts";
import { DB_ENCODINGS, encodeRecord, recordKey, type ChunkDb, type ChunkDbOperation, type ChunkRecord } from "./records.ts";
import { PinSet } from "./pins.ts";
import { recoverStore } from "./recover.ts";


/** How a compressed-only chunk becomes its raw bytes, when it is not a gzip member (a span of an ordinary gzip layer). */
export type Inflater = (compressed: Uint8Array, rawSize: number) => Promise<Buffer>;

/** The inflater a read passes down. */
export interface InflateOptions {
  inflate?: Inflater;
}

/** A monotonically increasing counter (prom-client's `Counter` fits). */
export interface Counter {
  inc(value?: number): void;
}

/** Optional counters the store increments; wire them to prom-client outside this folder. */
export interface ChunkStoreMetrics {
  /** Reads (`readRaw`, `readCompressed`) answered from the store. */
  hits?: Counter;
  /** Reads of chunks that are not in the store. */
  misses?: Counter;
  /** Chunks evicted (capacity, disk full, or files found missing). */
  evictions?: Counter;
  /** Bytes (compressed + raw) freed by evictions. */
  evictedBytes?: Counter;
  /** Bytes (compressed + raw) of newly stored chunks. */
  storedBytes?: Counter;
  /** Chunks whose files failed their check (bit rot, tampering): dropped, never served. */
  corrupt?: Counter;
}

/** Dependencies of a `ChunkStore`. */
export interface ChunkStoreComponents {
  /** Where chunk records live: a `Level` or a sublevel of one. Owned (and closed) by the caller. */
  db: ChunkDb;
  /** pino logger; the store logs through `child({ component: "chunk-store" })`. Silent if absent. */
  logger?: Logger;
  metrics?: ChunkStoreMetrics;
}

/** Settings of a `ChunkStore`. */
export interface ChunkStoreInit {
  /** Store directory; chunk files live under `root/chunks/`. Created if missing. */
  root: string;
  /** Size cap in bytes of compressed + raw file bytes. Default 10 GiB. */
  capacityBytes?: number;
  /** Idle read handles kept open (two files per chunk). Default 256. */
  maxOpenFiles?: number;
  /** Interval at which last-access times are written to LevelDB in one batch. Default 10 s. */
  accessFlushMs?: number;
}

/** Options of `put` and `putCompressed`. */
export interface PutOptions {
  signal?: AbortSignal;
  /** The caller has just checked that sha256(compressed) is the digest: do not hash the bytes again. */
  verified?: boolean;
}

/** A snapshot of the store's size. */
export interface ChunkStoreStats {
  /** Chunks present. */
  chunks: number;
  /** Compressed + raw file bytes of present chunks. */
  bytes: number;
  capacityBytes: number;
}

interface Entry extends ChunkRecord {
  hex: string;
  /**
   * Its files were checked in this process (or written by it from verified
   * bytes): the `.z` against the digest, the `.raw` against what the `.z`
   * inflates to. Files can rot on disk and keep their length.
   */
  checked?: boolean;
}

/** Bytes the chunk's files take: compressed, plus raw when stored. */
const sizeOf = (e: ChunkRecord): number => e.compressedSize + (e.rawStored ? e.rawSize : 0);

/**
 * The agent's on-disk chunk store: for every verified chunk, its compressed
 * bytes (served to peers) and its uncompressed bytes (random reads for FUSE),
 * as two files named by the chunk digest, with a LevelDB record per chunk.
 * A chunk stored compressed only (`putCompressed`: background prefetch, the
 * supernode) gets its uncompressed file on its first raw read.
 *
 * A chunk is visible (`has`, reads) only once its files were written to
 * temp files, fsynced, renamed into place and its record committed, so
 * after a crash a chunk is either whole or absent (`open` reconciles files
 * and records). Least-recently-used unpinned chunks are evicted to stay
 * under `capacityBytes`. Pins live in memory only: owners re-pin after a
 * restart. One store per root; LevelDB's lock keeps a second process out
 * when the db lives beside it.
 */
export class ChunkStore {
  private readonly db: ChunkDb;
  private readonly log: Logger;
  private readonly metrics: ChunkStoreMetrics;
  private readonly root: string;
  private readonly capacity: number;
  private readonly files: FileHandleCache;
  private readonly writer = new DurableWriter();
  /** Present chunks in LRU order, least recently used first. */
  private readonly entries = new Map<string, Entry>();
  /** In-flight put or removal per digest: later puts of that digest wait for it. */
  private readonly pending = new Map<string, Promise<void>>();
  /** In-flight inflation of a compressed-only chunk per digest: concurrent raw reads share it. */
  private readonly inflating = new Map<string, Promise<Buffer | undefined>>();
  /** First-read checks under way per digest. */
  private readonly checking = new Map<string, Promise<boolean>>();
  private readonly pins = new PinSet();
  /** Digests whose last access is not yet persisted. */
  private readonly dirty = new Set<string>();
  private readonly dirsMade = new Set<string>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly timer: NodeJS.Timeout;
  private dbChain: Promise<unknown> = Promise.resolve();
  private bytes = 0;
  private seq = 0;
  private closed = false;

  private constructor(components: ChunkStoreComponents, init: Required<ChunkStoreInit>, log: Logger, chunks: { digest: string; hex: string; record: ChunkRecord }[]) {
    this.db = components.db;
    this.log = log;
    this.metrics = components.metrics ?? {};
    this.root = init.root;
    this.capacity = init.capacityBytes;
    this.files = new FileHandleCache(init.maxOpenFiles);
    for (const c of chunks) {
      this.entries.set(c.digest, { ...c.record, hex: c.hex });
      this.bytes += sizeOf(c.record);
      this.seq = Math.max(this.seq, c.record.seq);
    }
    this.timer = setInterval(() => void this.flushAccess(), init.accessFlushMs);
    this.timer.unref();
  }

  /**
   * Open (creating if needed) the store at `init.root`, reconcile it with its
   * LevelDB records (see `recoverStore`: temp files and unverifiable orphans
   * are deleted, records without files dropped) and load the present set.
   * Does not evict, even if over capacity: owners have not re-pinned yet.
   */
  static async open(components: ChunkStoreComponents, init: ChunkStoreInit): Promise<ChunkStore> {
    const full: Required<ChunkStoreInit> = {
      root: init.root,
      capacityBytes: init.capacityBytes ?? DEFAULT_CAPACITY_BYTES,
      maxOpenFiles: init.maxOpenFiles ?? DEFAULT_MAX_OPEN_FILES,
      accessFlushMs: init.accessFlushMs ?? DEFAULT_ACCESS_FLUSH_MS,
    };
    if (!full.root) throw new InvalidArgumentError("chunk store: root is required");
    for (const key of ["capacityBytes", "maxOpenFiles", "accessFlushMs"] as const) {
      if (!Number.isSafeInteger(full[key]) || full[key] <= 0) throw new InvalidArgumentError(`chunk store: ${key} must be a positive integer`);
    }
    const log = (components.logger ?? pino({ enabled: false })).child({ component: "chunk-store" });
    await mkdir(chunksDir(full.root), { recursive: true });
    const report = await recoverStore(components.db, full.root, log);
    log.info({ chunks: report.chunks.length, dropped: report.droppedRecords, deletedFiles: report.deletedFiles, adopted: report.adopted }, "chunk store opened");
    return new ChunkStore(components, full, log, report.chunks);
  }

  /** True if the chunk is present (fully stored and committed). Does not count as an access. */
  has(digest: string): boolean {
    return this.entries.has(digest);
  }

  /** True if the chunk is present with its uncompressed file (false for absent and compressed-only chunks). */
  hasRaw(digest: string): boolean {
    return this.entries.get(digest)?.rawStored === true;
  }

  /**
   * Store the uncompressed file of a compressed-only chunk now, rather than
   * at its first raw read (idle-time work). True when the chunk is present
   * with both files afterwards. Does not count as an access.
   */
  async inflateStored(digest: string, opts: InflateOptions = {}): Promise<boolean> {
    this.assertOpen();
    const entry = this.entries.get(digest);
    if (!entry) return false;
    if (entry.rawStored) return true;
    const raw = await this.inflate(digest, entry, opts.inflate);
    return raw !== undefined && this.hasRaw(digest);
  }

  /** Digests of present chunks, least recently used first. */
  digests(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Store a chunk: `compressed` (whose sha256 must equal `digest`, else
   * `DigestMismatchError`; `verified` says the caller has just checked that,
   * and skips hashing the bytes again) and its uncompressed bytes `raw`
   * (trusted: the caller inflated verified bytes). Atomic: a crash at any moment leaves the
   * chunk whole or absent. Idempotent: storing a present chunk only marks it
   * used. Concurrent puts of one digest share the work; if the first fails,
   * the next one tries again itself. On ENOSPC it evicts unpinned chunks once
   * and retries, then throws `DiskFullError` with nothing left behind.
   * Aborting `signal` cancels the put up to the moment files are renamed.
   * Afterwards evicts down to capacity, never the chunk just stored.
   */
  async put(digest: string, compressed: Uint8Array, raw: Uint8Array, opts: PutOptions = {}): Promise<void> {
    return this.putChunk(digest, compressed, raw, raw.length, opts);
  }

  /**
   * Store a chunk's `compressed` bytes only (verified as in `put`), saving
   * the inflation and half the writes; `rawSize` is its uncompressed size.
   * The first `readRaw` inflates it and stores the uncompressed file. Same
   * atomicity, idempotence and disk-full handling as `put`.
   */
  async putCompressed(digest: string, compressed: Uint8Array, rawSize: number, opts: PutOptions = {}): Promise<void> {
    if (!isCount(rawSize)) throw new InvalidArgumentError(`chunk store: bad raw size ${rawSize}`);
    return this.putChunk(digest, compressed, undefined, rawSize, opts);
  }

  private async putChunk(digest: string, compressed: Uint8Array, raw: Uint8Array | undefined, rawSize: number, opts: PutOptions): Promise<void> {
    this.assertOpen();
    const hex = digestHex(digest);
    opts.signal?.throwIfAborted();
    for (;;) {
      const entry = this.entries.get(digest);
      if (entry) return this.touch(digest, entry);
      const busy = this.pending.get(digest);
      if (!busy) break;
      await untilAborted(busy.catch(() => undefined), opts.signal);
      this.assertOpen();
    }
    if (!opts.verified) {
      const actual = sha256Hex(compressed);
      if (actual !== hex) throw new DigestMismatchError(`chunk ${digest}`, digest, `sha256:${actual}`);
    }
    const op = this.track(this.store(digest, hex, compressed, raw, rawSize, opts.signal));
    this.pending.set(digest, op);
    try {
      await op;
    } finally {
      if (this.pending.get(digest) === op) this.pending.delete(digest);
    }
    if (this.bytes > this.capacity && !this.closed) {
      // Failures are logged by removeVictims; the chunk itself is stored.
      await this.removeVictims(this.pickVictims((freed) => this.bytes - freed <= this.capacity, digest), "capacity").catch(() => undefined);
    }
  }

  /**
   * Up to `length` uncompressed bytes of the chunk starting at `offset`.
   * Fewer bytes only at the end of the chunk; an empty buffer if `offset` is
   * at or past the end or `length` is 0. Undefined if the chunk is absent
   * (never stored, or evicted meanwhile). Counts as an access for LRU.
   * A chunk stored compressed only is inflated (and its uncompressed file
   * stored) first; one whose compressed file no longer inflates to its
   * recorded size is dropped and reads as absent.
   */
  async readRaw(digest: string, offset: number, length: number, opts: { signal?: AbortSignal } & InflateOptions = {}): Promise<Buffer | undefined> {
    this.assertOpen();
    if (!isCount(offset) || !isCount(length)) throw new InvalidArgumentError(`chunk store: bad range offset=${offset} length=${length}`);
    opts.signal?.throwIfAborted();
    const entry = this.entries.get(digest);
    if (!entry) return this.miss();
    if (!entry.checked && !(await this.check(digest, entry, opts.inflate))) return this.miss();
    const start = Math.min(offset, entry.rawSize);
    const count = Math.min(length, entry.rawSize - start);
    if (!entry.rawStored && count > 0) {
      const raw = await this.inflate(digest, entry, opts.inflate);
      return raw ? Buffer.from(raw.buffer, raw.byteOffset + start, count) : this.miss();
    }
    return this.read(digest, entry, chunkPaths(this.root, entry.hex).raw, start, count);
  }

  /** Inflate a compressed-only chunk once however many read it, and store its uncompressed file. */
  private inflate(digest: string, entry: Entry, inflater?: Inflater): Promise<Buffer | undefined> {
    let p = this.inflating.get(digest);
    if (p) return p;
    p = this.track((async () => {
      const z = await this.read(digest, entry, chunkPaths(this.root, entry.hex).z, 0, entry.compressedSize);
      if (!z) return undefined;
      let raw: Buffer;
      try {
        raw = inflater ? await inflater(z, entry.rawSize) : await gunzipMemberAsync(z, entry.rawSize, { layer: digest, blobOffset: 0 });
        if (raw.length !== entry.rawSize) throw new InvalidArgumentError(`inflates to ${raw.length} bytes, not ${entry.rawSize}`);
      } catch (err) {
        this.log.warn({ digest, err }, "stored chunk does not inflate to its size; dropping it");
        if (this.entries.get(digest) === entry) await this.removeVictims([[digest, entry]], "corrupt").catch(() => undefined);
        return undefined;
      }
      await this.storeRaw(digest, entry, raw).catch((err: unknown) => this.log.warn({ digest, err }, "storing an inflated chunk failed; it is inflated again on the next read"));
      return raw;
    })().finally(() => this.inflating.delete(digest)));
    this.inflating.set(digest, p);
    return p;
  }

  /** Add the uncompressed file of a compressed-only chunk (best effort: the chunk stays readable either way). */
  private async storeRaw(digest: string, entry: Entry, raw: Buffer): Promise<void> {
    if (this.closed || this.pending.has(digest)) return;
    const paths = chunkPaths(this.root, entry.hex);
    const temp = tempPathFor(paths.raw);
    try {
      await this.writer.writeTemps([{ path: temp, bytes: raw }]);
      if (this.entries.get(digest) !== entry || this.pending.has(digest)) throw new AbortedError(`chunk ${digest} was removed while its inflated copy was written`);
      await this.writer.publish([[temp, paths.raw]], paths.dir);
    } catch (err) {
      await unlinkQuiet(temp);
      throw err;
    }
    const record: ChunkRecord = { compressedSize: entry.compressedSize, rawSize: entry.rawSize, rawStored: true, lastAccess: entry.lastAccess, seq: entry.seq };
    await this.dbWrite(() => (this.entries.get(digest) === entry ? [{ type: "put", key: recordKey(digest), value: encodeRecord(record) }] : []));
    if (this.entries.get(digest) !== entry) return;
    entry.rawStored = true;
    this.bytes += entry.rawSize;
    this.metrics.storedBytes?.inc(entry.rawSize);
  }

  /** All compressed bytes of the chunk (a complete gzip member), or undefined if absent. Counts as an access. */
  async readCompressed(digest: string, opts: { signal?: AbortSignal } = {}): Promise<Buffer | undefined> {
    this.assertOpen();
    opts.signal?.throwIfAborted();
    const entry = this.entries.get(digest);
    if (!entry) return this.miss();
    if (!entry.checked && !(await this.check(digest, entry))) return this.miss();
    return this.read(digest, entry, chunkPaths(this.root, entry.hex).z, 0, entry.compressedSize);
  }

  /**
   * The first read of a chunk in this process checks its files: the
   * compressed file against the chunk's digest, the inflated one (when
   * stored) against what the compressed one inflates to. A chunk that fails
   * is dropped (logged, counted) and reads as absent, so the caller fetches
   * it again; false then. Shared by concurrent readers.
   */
  private check(digest: string, entry: Entry, inflater?: Inflater): Promise<boolean> {
    let p = this.checking.get(digest);
    if (p) return p;
    p = this.track((async () => {
      const paths = chunkPaths(this.root, entry.hex);
      const z = await this.read(digest, entry, paths.z, 0, entry.compressedSize);
      if (!z) return false;
      let bad: string | undefined = sha256Hex(z) === entry.hex ? undefined : "its compressed file does not match its digest";
      if (!bad && entry.rawStored) {
        const raw = await this.read(digest, entry, paths.raw, 0, entry.rawSize);
        if (!raw) return false;
        const want = await (inflater ? inflater(z, entry.rawSize) : gunzipMemberAsync(z, entry.rawSize, { layer: digest, blobOffset: 0 })).catch(() => undefined);
        if (!want || !want.equals(raw)) bad = "its inflated file differs from its compressed one";
      }
      if (bad) {
        this.log.error({ digest, why: bad }, "stored chunk is corrupt on disk; dropped, it is fetched again");
        this.metrics.corrupt?.inc();
        if (this.entries.get(digest) === entry) await this.removeVictims([[digest, entry]], "corrupt").catch(() => undefined);
        return false;
      }
      entry.checked = true;
      return true;
    })().finally(() => this.checking.delete(digest)));
    this.checking.set(digest, p);
    return p;
  }

  /**
   * Mark `digests` as needed by `owner` (a mount, an image): pinned chunks
   * are never evicted. Pins add up per owner; digests not yet present are
   * protected once stored. In memory only.
   */
  pin(owner: string, digests: Iterable<string>): void {
    this.pins.pin(owner, digests);
  }

  /** Drop every pin of `owner`. Does not evict by itself: the next put or `evict()` does. */
  unpin(owner: string): void {
    this.pins.unpin(owner);
  }

  /**
   * Evict least-recently-used unpinned chunks until the store is within
   * capacity (or nothing unpinned is left). Removes each db record before
   * its files. Returns the bytes freed (0 if already within capacity).
   */
  async evict(): Promise<number> {
    this.assertOpen();
    return this.removeVictims(this.pickVictims((freed) => this.bytes - freed <= this.capacity), "capacity");
  }

  /** Current size; `bytes` may exceed `capacityBytes` while everything else is pinned. */
  stats(): ChunkStoreStats {
    return { chunks: this.entries.size, bytes: this.bytes, capacityBytes: this.capacity };
  }

  /**
   * Wait for in-flight puts and evictions, persist last-access times and
   * close file handles. Idempotent. Does not close the db (its owner does).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    while (this.inflight.size) await Promise.allSettled([...this.inflight]);
    await this.flushAccess();
    await this.dbChain;
    await this.files.closeAll();
    await this.writer.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError();
  }

  private miss(): undefined {
    this.metrics.misses?.inc();
    return undefined;
  }

  private touch(digest: string, entry: Entry): void {
    entry.seq = ++this.seq;
    entry.lastAccess = Date.now();
    this.entries.delete(digest);
    this.entries.set(digest, entry);
    this.dirty.add(digest);
  }

  private async read(digest: string, entry: Entry, file: string, position: number, length: number): Promise<Buffer | undefined> {
    this.touch(digest, entry);
    if (length === 0) {
      this.metrics.hits?.inc();
      return Buffer.alloc(0);
    }
    try {
      const buf = await this.files.with(file, (h) => readAt(h, position, length));
      this.metrics.hits?.inc();
      return buf;
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw err;
      // Evicted meanwhile, or deleted behind our back: forget it.
      if (this.entries.get(digest) === entry) {
        this.log.warn({ digest, file }, "chunk file missing; dropping chunk");
        await this.removeVictims([[digest, entry]], "missing");
      }
      return this.miss();
    }
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = (): void => void this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  /** Serialize db writes so a batch of access times never lands after a later delete. */
  private dbWrite(build: () => ChunkDbOperation[]): Promise<void> {
    const p = this.dbChain.then(async () => {
      const ops = build();
      if (ops.length) await this.db.batch(ops, DB_ENCODINGS);
    });
    this.dbChain = p.catch(() => undefined);
    return p;
  }

  private async flushAccess(): Promise<void> {
    if (!this.dirty.size) return;
    const digests = [...this.dirty];
    this.dirty.clear();
    try {
      await this.dbWrite(() =>
        digests.flatMap((d) => {
          const e = this.entries.get(d);
          return e ? [{ type: "put" as const, key: recordKey(d), value: encodeRecord(e) }] : [];
        }),
      );
    } catch (err) {
      this.log.warn({ err, chunks: digests.length }, "persisting last-access times failed");
      for (const d of digests) if (this.entries.has(d)) this.dirty.add(d);
    }
  }

  private async store(digest: string, hex: string, compressed: Uint8Array, raw: Uint8Array | undefined, rawSize: number, signal?: AbortSignal): Promise<void> {
    const paths = chunkPaths(this.root, hex);
    const size = compressed.length + (raw?.length ?? 0);
    for (let attempt = 0; ; attempt++) {
      try {
        await this.writeFiles(paths, compressed, raw, signal);
        break;
      } catch (err) {
        if (!isNoSpace(err)) throw err;
        const toFree = attempt === 0 ? await this.bytesToFree(size, digest) : 0;
        const victims = toFree > 0 ? this.pickVictims((freed) => freed >= toFree, digest) : [];
        this.log.warn({ digest, size, evicting: victims.length }, "disk full while storing chunk");
        if (!victims.length) throw new DiskFullError(digest, size, { cause: err });
        await this.removeVictims(victims, "disk-full");
      }
    }
    const record: ChunkRecord = { compressedSize: compressed.length, rawSize, rawStored: raw !== undefined, lastAccess: Date.now(), seq: ++this.seq };
    try {
      await this.dbWrite(() => [{ type: "put", key: recordKey(digest), value: encodeRecord(record) }]);
    } catch (err) {
      this.files.invalidate(paths.z);
      this.files.invalidate(paths.raw);
      await unlinkQuiet(paths.z, paths.raw);
      throw isNoSpace(err) ? new DiskFullError(digest, size, { cause: err }) : err;
    }
    this.entries.set(digest, { ...record, hex, checked: true });
    this.bytes += size;
    this.metrics.storedBytes?.inc(size);
  }

  /** Write the files (`.z`, and `.raw` when given) to temps, fsync, rename into place, fsync the directory. All or nothing. */
  private async writeFiles(paths: ChunkPaths, compressed: Uint8Array, raw: Uint8Array | undefined, signal?: AbortSignal): Promise<void> {
    const tz = tempPathFor(paths.z);
    const tr = tempPathFor(paths.raw);
    const made = !this.dirsMade.has(paths.dir);
    await this.writer.writeTemps([{ path: tz, bytes: compressed }, ...(raw ? [{ path: tr, bytes: raw }] : [])], made ? paths.dir : undefined);
    if (made) this.dirsMade.add(paths.dir);
    try {
      signal?.throwIfAborted();
      await this.writer.publish([[tz, paths.z], ...(raw ? [[tr, paths.raw] as [string, string]] : [])], paths.dir);
    } catch (err) {
      await unlinkQuiet(tz, tr, paths.z, ...(raw ? [paths.raw] : []));
      throw err;
    }
  }

  /**
   * How many bytes of unpinned chunks to evict so a `size`-byte chunk fits
   * after ENOSPC: the shortfall against the file system's free space (plus
   * block slack), or `size` if it claims enough is free. 0 if evicting every
   * unpinned chunk could not make room: then nothing is evicted in vain.
   */
  private async bytesToFree(size: number, keep: string): Promise<number> {
    let evictable = 0;
    for (const [digest, entry] of this.entries) if (digest !== keep && !this.pins.has(digest)) evictable += sizeOf(entry);
    if (evictable === 0) return 0;
    const need = size + DISK_FULL_SLACK_BYTES;
    let free: number;
    try {
      const fs = await statfs(this.root);
      free = fs.bavail * fs.bsize;
    } catch {
      return need;
    }
    if (free + evictable < need) return 0;
    return need > free ? need - free : size;
  }

  /** Unpinned chunks, least recently used first, until `enough(bytesSoFar)`; never `keep`. */
  private pickVictims(enough: (freed: number) => boolean, keep?: string): [string, Entry][] {
    const victims: [string, Entry][] = [];
    let freed = 0;
    for (const [digest, entry] of this.entries) {
      if (enough(freed)) break;
      if (digest === keep || this.pins.has(digest)) continue;
      victims.push([digest, entry]);
      freed += sizeOf(entry);
    }
    return victims;
  }

  /**
   * Make `victims` absent at once (in memory), then delete their records in
   * one batch, then their files. If the db write fails the files stay, so
   * the chunks come back at the next open. Returns bytes freed.
   */
  private async removeVictims(victims: [string, Entry][], reason: string): Promise<number> {
    if (!victims.length) return 0;
    let freed = 0;
    for (const [digest, entry] of victims) {
      this.entries.delete(digest);
      this.dirty.delete(digest);
      freed += sizeOf(entry);
    }
    this.bytes -= freed;
    const op = this.track(
      (async () => {
        await this.dbWrite(() => victims.map(([digest]) => ({ type: "del" as const, key: recordKey(digest) })));
        const files = victims.flatMap(([, e]) => {
          const p = chunkPaths(this.root, e.hex);
          return [p.z, p.raw];
        });
        for (const f of files) this.files.invalidate(f);
        const errors = await unlinkQuiet(...files);
        if (errors.length) this.log.warn({ err: errors[0] }, "unlinking evicted chunk files failed");
      })(),
    );
    for (const [digest] of victims) this.pending.set(digest, op);
    try {
      await op;
    } catch (err) {
      this.log.error({ err, chunks: victims.length }, "deleting evicted chunk records failed; files kept");
      throw err;
    } finally {
      for (const [digest] of victims) if (this.pending.get(digest) === op) this.pending.delete(digest);
    }
    this.metrics.evictions?.inc(victims.length);
    this.metrics.evictedBytes?.inc(freed);
    this.log.debug({ chunks: victims.length, bytes: freed, reason }, "evicted chunks");
    return freed;
  }
}
