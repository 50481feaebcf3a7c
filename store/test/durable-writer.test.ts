import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DurableWriter, WriteError } from "../src/durable-writer.ts";
import { StoreClosedError } from "../src/errors.ts";
import { prng } from "./helpers.ts";

describe("DurableWriter (the store's writer threads)", () => {
  let dir: string;
  let writer: DurableWriter;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "shoal-writer-"));
    writer = new DurableWriter();
  });
  afterEach(async () => {
    await writer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes temps whole (making their directory) and publishes them by renaming", async () => {
    const sub = path.join(dir, "ab", "cd");
    const a = prng(1, 300_000);
    const b = prng(2, 5);
    await writer.writeTemps([{ path: path.join(sub, "a.tmp"), bytes: a }, { path: path.join(sub, "b.tmp"), bytes: b }], sub);
    expect((await readdir(sub)).sort()).toEqual(["a.tmp", "b.tmp"]);
    await writer.publish([[path.join(sub, "a.tmp"), path.join(sub, "a")], [path.join(sub, "b.tmp"), path.join(sub, "b")]], sub);
    expect((await readdir(sub)).sort()).toEqual(["a", "b"]);
    expect(await readFile(path.join(sub, "a"))).toEqual(a);
    expect(await readFile(path.join(sub, "b"))).toEqual(b);
  });

  it("leaves none of a step's temps when one fails, and says which system call failed", async () => {
    const good = path.join(dir, "good.tmp");
    const bad = path.join(dir, "missing", "bad.tmp");
    const err = await writer.writeTemps([{ path: good, bytes: prng(3, 1000) }, { path: bad, bytes: prng(4, 10) }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WriteError);
    expect(err).toMatchObject({ errno: "ENOENT" });
    expect((err as Error).message).toContain("bad.tmp");
    expect(await readdir(dir)).toEqual([]);
    // a temp that exists already is not overwritten
    await writer.writeTemps([{ path: good, bytes: prng(5, 10) }]);
    await expect(writer.writeTemps([{ path: good, bytes: prng(6, 10) }])).rejects.toMatchObject({ errno: "EEXIST" });
    expect(await readFile(good)).toEqual(prng(5, 10));
  });

  it("refuses work after close", async () => {
    await writer.close();
    await expect(writer.writeTemps([{ path: path.join(dir, "x"), bytes: prng(7, 1) }])).rejects.toBeInstanceOf(StoreClosedError);
  });
});
