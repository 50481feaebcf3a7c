// containerd's expectations of a snapshotter (the suite in ../testsuite), held against shoal's
// snapshotter over its gRPC socket.
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { describeSnapshotterSuite } from "../testsuite/index.ts";
import { removeDir, serveSnapshotter, type ServedSnapshotter } from "./helpers.ts";

let served: ServedSnapshotter;
let scratch: string;
beforeAll(async () => {
  served = await serveSnapshotter();
  scratch = await mkdtemp(join(tmpdir(), "shoal-snap-mnt-"));
});
afterAll(async () => {
  await served?.close();
  await removeDir(served.dir);
  await removeDir(scratch);
});

describeSnapshotterSuite("shoal's snapshotter, over gRPC", () => ({ api: served.client, scratch, prefix: "t" }));
