/**
 * The chunk store's LevelDB records: `chunk!<digest>` -> `ChunkRecord` (JSON text).
 * A record exists only for a chunk whose files were fully written,
 * fsynced and renamed into place: always the `.z` file, and the `.raw` file
 * when `rawStored`.
 */

/** Encodings the store passes on every call, whatever the db's defaults are. */
export const DB_ENCODINGS = { keyEncoding: "utf8", valueEncoding: "utf8" } as const;

/** One write in a `ChunkDb.batch`. */
export type ChunkDbOperation = { type: "put"; key: string; value: string } | { type: "del"; key: string };

/**
 * The narrow LevelDB surface the chunk store needs. A `Level` instance or a
 * sublevel of one (string keys) satisfies it; the store passes explicit utf8
 * encodings and does its own JSON, so the db's default encodings do not
 * matter and a malformed value cannot break iteration.
 * The store never closes the db: its owner does, after `ChunkStore.close()`.
 */
export interface ChunkDb {
  batch(operations: ChunkDbOperation[], options: typeof DB_ENCODINGS): Promise<void>;
  iterator(options: { gte: string; lt: string } & typeof DB_ENCODINGS): AsyncIterable<[string, string]>;
}

/** What LevelDB holds for one present chunk. */
export interface ChunkRecord {
  /** Size of the `.z` file (compressed bytes). */
  compressedSize: number;
  /** Uncompressed size of the chunk (the size of its `.raw` file, when stored). */
  rawSize: number;
  /**
   * True when the `.raw` file is stored. A chunk stored compressed only
   * (`putCompressed`) gets it on its first raw read. Absent in records
   * written before this field existed: they always had both files.
   */
  rawStored: boolean;
  /** Wall-clock ms of the last read or put (persisted in batches, so approximate after a crash). */
  lastAccess: number;
  /** Monotonic access sequence number: the LRU order, exact across clean restarts. */
  seq: number;
}

const PREFIX = "chunk!";

/** Key range covering every chunk record. */
export const RECORD_RANGE = { gte: PREFIX, lt: "chunk\"" } as const;

/** The db key of a chunk's record. */
export function recordKey(digest: string): string {
  return PREFIX + digest;
}

/** The digest named by a record key, or undefined if `key` is not a chunk record key. */
export function digestOfKey(key: string): string | undefined {
  return key.startsWith(PREFIX) ? key.slice(PREFIX.length) : undefined;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** The db value of a record. */
export function encodeRecord(r: ChunkRecord): string {
  return JSON.stringify({ compressedSize: r.compressedSize, rawSize: r.rawSize, rawStored: r.rawStored, lastAccess: r.lastAccess, seq: r.seq });
}

/** A record read from the db, or undefined if it is malformed. */
export function parseRecord(text: string): ChunkRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  if (!isCount(r.compressedSize) || !isCount(r.rawSize) || !isCount(r.lastAccess) || !isCount(r.seq)) return undefined;
  if (r.rawStored !== undefined && typeof r.rawStored !== "boolean") return undefined;
  return { compressedSize: r.compressedSize, rawSize: r.rawSize, rawStored: r.rawStored ?? true, lastAccess: r.lastAccess, seq: r.seq };
}
