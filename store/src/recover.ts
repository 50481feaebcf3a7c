import { readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { gunzip } from "node:zlib";
import type { Logger } from "pino";
import { RECOVERY_CONCURRENCY } from "./constants.ts";
import { errnoCode, isTempName, mapLimit, unlinkQuiet } from "./files.ts";
import { CHUNK_FILE_RE, SHARD_DIR_RE, chunkPaths, chunksDir, digestHex, sha256Hex } from "./layout.ts";
import { DB_ENCODINGS, RECORD_RANGE, digestOfKey, encodeRecord, parseRecord, recordKey } from "./records.ts";
import type { ChunkDb, ChunkDbOperation, ChunkRecord } from "./records.ts";

const gunzipAsync = promisify(gunzip);

/** A chunk found consistent (record + its files) at open. */
export interface RecoveredChunk {
  digest: string;
  hex: string;
  record: ChunkRecord;
}

/** What `recoverStore` found and repaired. */
export interface RecoveryReport {
  /** Present chunks, oldest access first. */
  chunks: RecoveredChunk[];
  /** Records dropped: malformed, files missing, or sizes not matching. */
  droppedRecords: number;
  /** Files deleted: temp files, orphans that did not verify, files of dropped records. */
  deletedFiles: number;
  /** Orphans (files without a record, `.z` verified) adopted into the db. */
  adopted: number;
}

interface FilePair {
  z?: string;
  raw?: string;
}

/**
 * Reconcile LevelDB with the files under `ROOT/chunks` after a restart or crash:
 *
 * - temp files (`*.tmp-*`) and unknown files in shard directories are deleted;
 * - a record whose files are missing or differ in size from it is dropped
 *   (and whatever file of it remains is deleted);
 * - a record of a chunk stored compressed only whose `.raw` file exists with
 *   the recorded size (a crash after the raw file was renamed into place but
 *   before its record was updated) gets `rawStored`; a `.raw` file of
 *   another size is deleted;
 * - an orphan (files without a record: a crash between rename and the db
 *   write, or between an eviction's db delete and its unlinks) is adopted
 *   only if the `.z` file's sha256 equals its name and it inflates; its
 *   `.raw` file is kept if its size is the inflated size (it is renamed into
 *   place only after it was completely written and fsynced). Anything else
 *   is deleted.
 *
 * Afterwards every record names complete files and no other file remains.
 */
export async function recoverStore(db: ChunkDb, root: string, log: Logger): Promise<RecoveryReport> {
  const ops: ChunkDbOperation[] = [];
  const records = new Map<string, ChunkRecord>();
  for await (const [key, value] of db.iterator({ ...RECORD_RANGE, ...DB_ENCODINGS })) {
    const digest = digestOfKey(key);
    const record = parseRecord(value);
    if (digest !== undefined && record && isDigest(digest)) records.set(digest, record);
    else {
      log.warn({ key }, "dropping malformed chunk record");
      ops.push({ type: "del", key });
    }
  }

  const { pairs, junk } = await scanFiles(root);
  let deletedFiles = junk.length;
  if (junk.length) log.info({ files: junk.length }, "deleting temp and unknown files");
  await failOn(unlinkQuiet(...junk));

  const kept: RecoveredChunk[] = [];
  let maxSeq = 0;
  const checked = await mapLimit([...records], RECOVERY_CONCURRENCY, async ([digest, record]) => {
    const hex = digestHex(digest);
    const pair = pairs.get(hex) ?? {};
    pairs.delete(hex);
    const zOk = pair.z !== undefined && (await sizeOf(pair.z)) === record.compressedSize;
    const rawOk = pair.raw !== undefined && (await sizeOf(pair.raw)) === record.rawSize;
    return { digest, hex, record, pair, ok: zOk && (rawOk || !record.rawStored), rawOk };
  });
  for (const c of checked) {
    if (c.ok) {
      if (!c.record.rawStored && c.pair.raw !== undefined) {
        if (c.rawOk) {
          c.record.rawStored = true;
          ops.push({ type: "put", key: recordKey(c.digest), value: encodeRecord(c.record) });
        } else {
          deletedFiles++;
          await failOn(unlinkQuiet(c.pair.raw));
        }
      }
      kept.push({ digest: c.digest, hex: c.hex, record: c.record });
      maxSeq = Math.max(maxSeq, c.record.seq);
      continue;
    }
    log.warn({ digest: c.digest }, "dropping chunk record whose files are missing or truncated");
    ops.push({ type: "del", key: recordKey(c.digest) });
    const files = [c.pair.z, c.pair.raw].filter((f) => f !== undefined);
    deletedFiles += files.length;
    await failOn(unlinkQuiet(...files));
  }

  const orphans = await mapLimit([...pairs], RECOVERY_CONCURRENCY, async ([hex, pair]) => ({
    hex,
    pair,
    adopt: pair.z !== undefined ? await adoptable(hex, pair.z, pair.raw) : undefined,
  }));
  let adopted = 0;
  for (const o of orphans) {
    if (o.adopt) {
      if (!o.adopt.rawStored && o.pair.raw !== undefined) {
        deletedFiles++;
        await failOn(unlinkQuiet(o.pair.raw));
      }
      const record: ChunkRecord = { ...o.adopt, seq: ++maxSeq };
      const digest = `sha256:${o.hex}`;
      ops.push({ type: "put", key: recordKey(digest), value: encodeRecord(record) });
      kept.push({ digest, hex: o.hex, record });
      adopted++;
      continue;
    }
    const files = [o.pair.z, o.pair.raw].filter((f) => f !== undefined);
    deletedFiles += files.length;
    await failOn(unlinkQuiet(...files));
  }
  if (adopted) log.info({ adopted }, "adopted verified orphan chunks");

  if (ops.length) await db.batch(ops, DB_ENCODINGS);
  kept.sort((a, b) => a.record.seq - b.record.seq);
  return { chunks: kept, droppedRecords: ops.filter((o) => o.type === "del").length, deletedFiles, adopted };
}

function isDigest(digest: string): boolean {
  try {
    digestHex(digest);
    return true;
  } catch {
    return false;
  }
}

async function failOn(errors: Promise<unknown[]>): Promise<void> {
  const [first] = await errors;
  if (first !== undefined) throw first;
}

async function sizeOf(file: string): Promise<number | undefined> {
  try {
    return (await stat(file)).size;
  } catch (err) {
    if (errnoCode(err) === "ENOENT") return undefined;
    throw err;
  }
}

/** The record for an orphan whose `.z` verifies and inflates, or undefined. */
async function adoptable(hex: string, zPath: string, rawPath: string | undefined): Promise<Omit<ChunkRecord, "seq"> | undefined> {
  const z = await readFile(zPath);
  if (sha256Hex(z) !== hex) return undefined;
  let rawSize: number;
  try {
    rawSize = (await gunzipAsync(z)).length;
  } catch {
    return undefined;
  }
  const raw = rawPath === undefined ? undefined : await stat(rawPath).catch(() => undefined);
  const rawStored = raw?.size === rawSize;
  return { compressedSize: z.length, rawSize, rawStored, lastAccess: Math.floor((raw ?? (await stat(zPath))).mtimeMs) };
}

/** Committed chunk files by hex, and every other file in shard directories. */
async function scanFiles(root: string): Promise<{ pairs: Map<string, FilePair>; junk: string[] }> {
  const pairs = new Map<string, FilePair>();
  const junk: string[] = [];
  const top = chunksDir(root);
  for (const shard of await readdir(top, { withFileTypes: true })) {
    if (!shard.isDirectory() || !SHARD_DIR_RE.test(shard.name)) continue;
    const dir = path.join(top, shard.name);
    for (const ent of await readdir(dir, { withFileTypes: true })) {
      const m = CHUNK_FILE_RE.exec(ent.name);
      const hex = m?.[1];
      if (!ent.isFile() || !hex || !hex.startsWith(shard.name)) {
        if (ent.isFile() || isTempName(ent.name)) junk.push(path.join(dir, ent.name));
        continue;
      }
      const pair = pairs.get(hex) ?? {};
      const paths = chunkPaths(root, hex);
      if (m[2] === "z") pair.z = paths.z;
      else pair.raw = paths.raw;
      pairs.set(hex, pair);
    }
  }
  return { pairs, junk };
}
