// An eStargz copy of the realistic image for the containerd bench's stargz pass, made with
// Debian's ctr-remote in a containerd of its own (setup, not measured) and cached as an OCI
// layout in `.cache/stargz/`, so a run only pushes it.
//   optimized: `ctr-remote image optimize --oci`: the first work runs once in a container
//              (offline: the image is imported from the layout, the container is on the
//              host's loopback), the files it reads go first in the layer with a prefetch
//              landmark after them (stargz prefetches that part at mount)
//   estargz:   `ctr-remote image convert --estargz --oci`: eStargz without a workload profile
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  FIRST_WORK_CONTAINER_SCRIPT, freePort, run, startContainerd, unmountAllUnder,
  type RealisticImage, type RunningContainerd,
} from "@shoal/testkit";
import { liveWorkDirs, removeWorkDir, sweepStaleWorkDirs } from "../leftovers.ts";
import { debVersion, STARGZ_CACHE } from "./build.ts";

/** Which eStargz: startup-optimised for the first work, or plain. */
export type EstargzForm = "optimized" | "estargz";

/** How a form is made, in words. */
export const ESTARGZ_FORMS: Record<EstargzForm, string> = {
  optimized: "startup-optimized eStargz (ctr-remote image optimize)",
  estargz: "plain eStargz (ctr-remote image convert --estargz)",
};

/** An eStargz image in an OCI layout. */
export interface EstargzImage {
  layoutDir: string;
  /** Its tag in the layout. */
  tag: string;
  form: EstargzForm;
  manifestDigest: string;
  /** Compressed layer bytes. */
  layerBytes: number;
  /** Files the optimizer saw the first work open (optimized only), in the order recorded. */
  prioritizedFiles?: number;
}

const WORK_PREFIX = "shoal-bench-estargz-";
const TAG = "v1-esgz";

/**
 * What the optimizer runs: the bench's first work, with nginx stopped a
 * second after it started (the container has no stdin to wait on).
 */
function optimizeArgs(port: number): string[] {
  return ["sh", "-c", FIRST_WORK_CONTAINER_SCRIPT.replace("read _ || true", "sleep 1"), "sh", String(port)];
}

/**
 * The eStargz copy of `image` in `form`, from the cache or made now (about
 * 40 s): a containerd of its own under a temp dir imports the image's layout,
 * `ctr-remote` converts it, `ctr image export` writes the result, which is
 * unpacked into `<cacheDir>/estargz-<form>-<key>/layout` (one per form). Cleans up its containerd
 * and temp dir, also on failure.
 */
export async function estargzImage(image: RealisticImage, form: EstargzForm, log: (s: string) => void, cacheDir: string = STARGZ_CACHE): Promise<EstargzImage> {
  const ctrRemote = `stargz-snapshotter ${await debVersion("stargz-snapshotter")}`;
  const key = createHash("sha256")
    .update([image.manifestDigest, form, ctrRemote, form === "optimized" ? optimizeArgs(0).join("\0") : ""].join("\0"))
    .digest("hex").slice(0, 16);
  const dir = join(cacheDir, `estargz-${form}-${key}`);
  const infoFile = join(dir, "image.json");
  if (existsSync(infoFile)) return JSON.parse(await readFile(infoFile, "utf8")) as EstargzImage;

  log(`stargz: making the ${ESTARGZ_FORMS[form]} copy of the image with ${ctrRemote} (setup, cached)`);
  await sweepStaleWorkDirs(WORK_PREFIX);
  const work = await mkdtemp(join(tmpdir(), `${WORK_PREFIX}${process.pid}-`));
  liveWorkDirs.add(work);
  let containerd: RunningContainerd | undefined;
  try {
    containerd = await startContainerd(join(work, "containerd"));
    const ctr = ["--address", containerd.address, "-n", "k8s.io"];
    const src = `bench/realistic:${image.tag}`;
    const dst = `bench/realistic:${TAG}`;
    const archive = join(work, "source.tar");
    await run("tar", ["-C", image.layoutDir, "-cf", archive, "."]);
    await run("ctr", [...ctr, "image", "import", "--base-name", "bench/realistic", archive]);
    await rm(archive);
    const t0 = performance.now();
    let prioritizedFiles: number | undefined;
    if (form === "optimized") {
      const record = join(work, "record.json");
      await run("ctr-remote", [
        ...ctr, "image", "optimize", "--oci", "--net-host", "--period", "60",
        "--entrypoint", "[]", "--args", JSON.stringify(optimizeArgs(await freePort())), "--record-out", record, src, dst,
      ]);
      const paths = (await readFile(record, "utf8")).split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { path: string }).path);
      prioritizedFiles = new Set(paths).size;
      if (prioritizedFiles === 0) throw new Error("ctr-remote image optimize recorded no file of the first work");
    } else {
      await run("ctr-remote", [...ctr, "image", "convert", "--estargz", "--oci", src, dst]);
    }
    log(`stargz: converted in ${((performance.now() - t0) / 1000).toFixed(1)} s${prioritizedFiles !== undefined ? `, ${prioritizedFiles} files of the first work first` : ""}`);
    const exported = join(work, "esgz.tar");
    await run("ctr", [...ctr, "image", "export", exported, dst]);
    await containerd.stop();
    containerd = undefined;

    const layout = join(work, "layout");
    await mkdir(layout);
    await run("tar", ["-C", layout, "-xf", exported]);
    const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string }> };
    const manifestDigest = index.manifests[0]?.digest;
    if (!manifestDigest) throw new Error("ctr image export wrote no manifest");
    const manifest = JSON.parse(await readFile(join(layout, "blobs", ...manifestDigest.split(":")), "utf8")) as { layers: Array<{ size: number; annotations?: Record<string, string> }> };
    if (!manifest.layers.every((l) => l.annotations?.["containerd.io/snapshot/stargz/toc.digest"])) throw new Error("the converted image has a layer without a TOC digest");
    const info: EstargzImage = {
      layoutDir: join(dir, "layout"), tag: TAG, form, manifestDigest,
      layerBytes: manifest.layers.reduce((n, l) => n + l.size, 0), ...(prioritizedFiles !== undefined ? { prioritizedFiles } : {}),
    };
    // one copy of each form: older ones (another image, ctr-remote or first work) go
    await mkdir(cacheDir, { recursive: true });
    for (const f of await readdir(cacheDir)) if (f.startsWith(`estargz-${form}-`)) await rm(join(cacheDir, f), { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await rename(layout, info.layoutDir).catch(async () => {
      await run("cp", ["-a", layout, info.layoutDir]);
    });
    await writeFile(infoFile, `${JSON.stringify(info, null, 2)}\n`);
    return info;
  } finally {
    await containerd?.stop();
    await unmountAllUnder(work);
    await removeWorkDir(work, log);
  }
}
