// Index size and load time for a layer of 100,000 files.
// Goals (issue 2): under 64 bytes per entry plus the path bytes; decoded in under 100 ms.
import { performance } from "node:perf_hooks";
import { LayerIndex, type TarEntry } from "@shoal/blockindex";

/** Paths shaped like a real distribution tree: nested dirs, long-ish names. */
function syntheticEntries(n: number): TarEntry[] {
  const entries: TarEntry[] = [];
  const dirs = ["usr/lib/python3/dist-packages", "usr/share/doc", "usr/include/linux", "usr/share/locale/de/LC_MESSAGES", "usr/lib/x86_64-linux-gnu"];
  let offset = 512;
  for (let i = 0; entries.length < n; i++) {
    const dir = `${dirs[i % dirs.length]}/pkg${Math.floor(i / 50)}`;
    if (i % 50 === 0) entries.push({ path: dir, type: "dir", mode: 0o755, uid: 0, gid: 0, mtimeSec: 1700000000, mtimeNsec: 0, size: 0, dataOffset: offset });
    const size = (i * 7919) % 20000;
    offset += 512;
    entries.push({ path: `${dir}/module_${i}_${(i * 2654435761) % 1000}.py`, type: "file", mode: 0o644, uid: 0, gid: 0, mtimeSec: 1700000000 + (i % 1000), mtimeNsec: 0, size, dataOffset: offset });
    offset += Math.ceil(size / 512) * 512;
  }
  return entries.slice(0, n);
}

export function runIndexBench(n = 100_000): { entries: number; bytes: number; pathBytes: number; perEntry: number; perEntryLessPaths: number; loadMs: number } {
  const entries = syntheticEntries(n);
  const uncompressed = entries.at(-1)!.dataOffset + entries.at(-1)!.size + 1024;
  const chunkSize = 1 << 20;
  const chunks = Math.ceil(uncompressed / chunkSize);
  const index = new LayerIndex({ chunkSize, uncompressedSize: uncompressed, chunkLengths: new Array(chunks).fill(300_000), chunkDigests: Array.from({ length: chunks }, () => Buffer.alloc(32, 7)), entries });
  const encoded = index.encode();
  const chunkTable = chunks * (32 + 3);
  const pathBytes = entries.reduce((s, e) => s + Buffer.byteLength(e.path), 0);
  // warm up, then take the median of several loads (decode + path lookup table)
  const times: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = performance.now();
    const loaded = LayerIndex.decode(encoded);
    loaded.find(entries[n >> 1]!.path);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const perEntry = (encoded.length - chunkTable) / n;
  return { entries: n, bytes: encoded.length, pathBytes, perEntry, perEntryLessPaths: perEntry - pathBytes / n, loadMs: times[4]! };
}
