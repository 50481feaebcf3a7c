import type { Level } from "level";

/** The agent's small metadata database seam (LevelDB underneath). */
export interface KeyValue {
  get(key: string): Promise<string | undefined>;
  put(key: string, value: string): Promise<void>;
  del(key: string): Promise<void>;
  getBuffer(key: string): Promise<Buffer | undefined>;
  putBuffer(key: string, value: Uint8Array): Promise<void>;
  /** Every `[key, value]` whose key starts with `prefix`, in key order. */
  entries(prefix: string): Promise<Array<[string, string]>>;
}

/** `KeyValue` over a `level` database opened with utf8 keys and values. */
export function levelKeyValue(db: Level<string, string>): KeyValue {
  return {
    async get(key) {
      return (await db.get(key)) ?? undefined;
    },
    async put(key, value) {
      await db.put(key, value);
    },
    async del(key) {
      await db.del(key);
    },
    async getBuffer(key) {
      const v = await db.get<string, Buffer>(key, { valueEncoding: "buffer" });
      return v ?? undefined;
    },
    async putBuffer(key, value) {
      await db.put<string, Buffer>(key, Buffer.from(value), { valueEncoding: "buffer" });
    },
    async entries(prefix) {
      const out: Array<[string, string]> = [];
      for await (const [k, v] of db.iterator({ gte: prefix, lt: `${prefix}\xff` })) out.push([k, v]);
      return out;
    },
  };
}
