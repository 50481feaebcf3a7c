/** A shoal snapshotter on a temp LevelDB and directory, served over gRPC on a unix socket. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { pino } from "pino";
import { serveSnapshots, SnapshotRecords, Snapshotter, SnapshotsClient, type RecordDb, type RemoteLayers, type SnapshotsServer } from "../src/index.ts";

/** `RecordDb` over a utf8 LevelDB. */
export function levelDb(db: Level<string, string>): RecordDb {
  return {
    get: async (k) => (await db.get(k)) ?? undefined,
    put: (k, v) => db.put(k, v),
    del: (k) => db.del(k),
    async entries(prefix) {
      const out: Array<[string, string]> = [];
      for await (const e of db.iterator({ gte: prefix, lt: `${prefix}\xff` })) out.push(e);
      return out;
    },
  };
}

/** A served snapshotter and everything to close it. */
export interface ServedSnapshotter {
  dir: string;
  socket: string;
  snapshotter: Snapshotter;
  client: SnapshotsClient;
  close(): Promise<void>;
}

/** Start a snapshotter in `dir` (a fresh temp dir when absent), with `remote` layers when given. */
export async function serveSnapshotter(opts: { dir?: string; remote?: RemoteLayers } = {}): Promise<ServedSnapshotter> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "shoal-snap-")));
  const db = new Level<string, string>(join(dir, "meta"), { keyEncoding: "utf8", valueEncoding: "utf8" });
  await db.open();
  const logger = pino({ level: process.env.SHOAL_TEST_LOG ?? "silent" });
  const snapshotter = new Snapshotter({ records: new SnapshotRecords({ db: levelDb(db) }), mounts: { inUse: async () => false }, logger, ...(opts.remote ? { remote: opts.remote } : {}) }, { root: join(dir, "snapshots") });
  await snapshotter.restore();
  const socket = join(dir, "snapshotter.sock");
  const server: SnapshotsServer = await serveSnapshots(snapshotter, socket, logger);
  const client = new SnapshotsClient({ socket });
  return {
    dir, socket, snapshotter, client,
    async close() {
      client.close();
      await server.close();
      await db.close();
    },
  };
}

/** Remove a snapshotter's directory. */
export const removeDir = (dir: string) => rm(dir, { recursive: true, force: true });
