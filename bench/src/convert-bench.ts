// `shoal convert` layer conversion against `gzip -dc | gzip -6` on the same 150 MB layer, in one run.
// Goal (issue 2): shoal faster (it compresses independent chunks on every core).
import { execFileSync, spawnSync } from "node:child_process";
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { convertLayer, OCI_LAYER_GZIP } from "@shoal/blockindex";

/** Real files from this machine's /usr until `bytes` is reached: a realistic mix of binaries and text. */
function pickFiles(bytes: number): string[] {
  const out = execFileSync("find", ["/usr/lib", "/usr/share", "/usr/bin", "-xdev", "-type", "f", "-size", "-20M"], { maxBuffer: 1 << 28 }).toString().split("\n").filter(Boolean).sort();
  const picked: string[] = [];
  let total = 0;
  for (const f of out) {
    if (total >= bytes) break;
    try {
      total += statSync(f).size;
      picked.push(f);
    } catch {
      // vanished or unreadable: skip
    }
  }
  return picked;
}

export interface ConvertBenchResult {
  tarBytes: number;
  gzipBytes: number;
  baselineSec: number;
  shoalSec: number;
  shoalBytes: number;
  speedup: number;
}

export async function runConvertBench(targetBytes = 150 * 1024 * 1024): Promise<ConvertBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "shoal-bench-convert-"));
  try {
    const list = join(dir, "files");
    writeFileSync(list, pickFiles(targetBytes).map((f) => f.slice(1)).join("\n"));
    const tar = join(dir, "layer.tar");
    const gz = join(dir, "layer.tar.gz");
    execFileSync("tar", ["--format=pax", "-C", "/", "-cf", tar, "-T", list], { stdio: ["ignore", "ignore", "ignore"] });
    execFileSync("sh", ["-c", `gzip -6 -c '${tar}' > '${gz}'`]);
    const tarBytes = statSync(tar).size;
    rmSync(tar);

    let t0 = performance.now();
    const r = spawnSync("sh", ["-c", `gzip -dc '${gz}' | gzip -6 > '${join(dir, "baseline.gz")}'`]);
    if (r.status !== 0) throw new Error(`baseline failed: ${r.stderr}`);
    const baselineSec = (performance.now() - t0) / 1000;

    t0 = performance.now();
    const out = createWriteStream(join(dir, "lazy.gz"));
    const result = await convertLayer(createReadStream(gz, { highWaterMark: 1 << 20 }), OCI_LAYER_GZIP, async (b) => {
      if (!out.write(b)) await once(out, "drain");
    });
    out.end();
    await once(out, "finish");
    const shoalSec = (performance.now() - t0) / 1000;
    return { tarBytes, gzipBytes: statSync(gz).size, baselineSec, shoalSec, shoalBytes: result.size, speedup: baselineSec / shoalSec };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
