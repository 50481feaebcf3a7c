/**
 * Snapshot metadata, persisted in the agent's LevelDB beside the chunk
 * store: one record per snapshot, by key (active and view snapshots) or name
 * (committed ones: containerd addresses both through one namespace).
 */
import { ShoalError } from "@shoal/base";

/** The kind of a snapshot, as containerd's `Kind`. */
export type SnapshotKind = "view" | "active" | "committed";

/** Where a remote (lazy) snapshot's layer lives: what it takes to mount it again after a restart. */
export interface RemoteLayerRecord {
  /** The layer directory in the agent's FUSE session. */
  dirId: string;
  /** The image it came with, by digest: `registry/repository@sha256:...`. */
  ref: string;
  /** The image manifest's digest. */
  image: string;
  /** The layer's position in that image (0 = bottom). */
  position: number;
  /** The layer blob's digest. */
  digest: string;
  /** Who uses the layer on the agent's side (one user per remote snapshot). */
  user: string;
}

/** One snapshot. */
export interface SnapshotRecord {
  /** Its key (active, view) or name (committed). */
  key: string;
  /** Its directory under `ROOT/snapshots/` (`fs`, `work`); remote snapshots have none of their own. */
  id: string;
  kind: SnapshotKind;
  /** The committed snapshot below it; "" for none. */
  parent: string;
  labels: Record<string, string>;
  /** ms since the epoch. */
  created: number;
  updated: number;
  /** Present for a remote snapshot: a lazy layer mounted from the agent's FUSE session. */
  remote?: RemoteLayerRecord;
}

/** The key-value store records live in (the agent's `KeyValue` over LevelDB fits). */
export interface RecordDb {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  /** Every `[key, value]` whose key starts with `prefix`, in key order. */
  entries(prefix: string): Promise<Array<[string, string]>>;
}

const PREFIX = "snap!";
const NEXT_ID = "snapid!next";

/** The records, with an id counter; every write is one database write. */
export class SnapshotRecords {
  readonly #db: RecordDb;
  #nextId: number | undefined;

  constructor(components: { db: RecordDb }) {
    this.#db = components.db;
  }

  async get(key: string): Promise<SnapshotRecord | undefined> {
    const text = await this.#db.get(PREFIX + key);
    return text === undefined ? undefined : (JSON.parse(text) as SnapshotRecord);
  }

  /** The record of `key`; `SHOAL_ERR_NOT_FOUND` when there is none. */
  async require(key: string): Promise<SnapshotRecord> {
    const r = await this.get(key);
    if (!r) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `snapshot ${JSON.stringify(key.slice(0, 300))} does not exist`);
    return r;
  }

  async put(r: SnapshotRecord): Promise<void> {
    await this.#db.put(PREFIX + r.key, JSON.stringify(r));
  }

  async del(key: string): Promise<void> {
    await this.#db.del(PREFIX + key);
  }

  /** Every record, in key order. */
  async all(): Promise<SnapshotRecord[]> {
    return (await this.#db.entries(PREFIX)).map(([, v]) => JSON.parse(v) as SnapshotRecord);
  }

  /** A directory id never used before (persisted before it is handed out). */
  async nextId(): Promise<string> {
    if (this.#nextId === undefined) this.#nextId = Number((await this.#db.get(NEXT_ID)) ?? "1");
    const id = this.#nextId++;
    await this.#db.put(NEXT_ID, String(this.#nextId));
    return String(id);
  }
}
