// The snapshotter suite held against the reference: containerd's own overlayfs snapshotter, through
// containerd's snapshots service (a containerd started by the test). What passes here and for shoal
// is what containerd expects of a snapshotter.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startContainerd, type RunningContainerd } from "@shoal/testkit";
import { afterAll, beforeAll } from "vitest";
import { SnapshotsClient } from "../src/index.ts";
import { describeSnapshotterSuite } from "../testsuite/index.ts";

let work: string;
let containerd: RunningContainerd;
let client: SnapshotsClient;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-snap-ref-"));
  // The suite's snapshots are held by no lease or container, so containerd's garbage collector
  // would take them between checks: it runs only when the suite is over.
  containerd = await startContainerd(join(work, "containerd"), {
    extra: '[plugins."io.containerd.gc.v1.scheduler"]\n  deletion_threshold = 0\n  mutation_threshold = 1000000\n  startup_delay = "1000h"',
  });
  client = new SnapshotsClient({ socket: containerd.address, snapshotter: "overlayfs", namespace: "suite" });
}, 60_000);
afterAll(async () => {
  client?.close();
  await containerd?.stop();
  await rm(work, { recursive: true, force: true });
});

describeSnapshotterSuite("containerd's overlayfs snapshotter (the reference), through containerd", () => ({ api: client, scratch: work, prefix: "r" }));
