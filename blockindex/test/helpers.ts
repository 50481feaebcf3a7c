import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** A fresh temp dir and a function removing it. */
export function tempDir(prefix = "shoal-bi-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Tar the contents of `dir` with GNU tar in `format`, sorted names, as bytes. */
export function gnuTar(dir: string, format: "pax" | "gnu" | "ustar", extra: string[] = []): Buffer {
  return execFileSync("tar", ["--format", format, "--sort=name", ...extra, "-C", dir, "-cf", "-", "."], { maxBuffer: 1 << 30 });
}

/** Deterministic pseudo-random bytes (mulberry32). */
export function prng(seed: number): (n: number) => Buffer {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
    return b;
  };
}

/** One raw ustar header block (checksum filled in unless `badChecksum`). */
export function rawHeader(h: { name: string; size?: number; type?: string; mode?: number; linkname?: string; badChecksum?: boolean; sizeField?: string }): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, "utf8");
  b.write((h.mode ?? 0o644).toString(8).padStart(7, "0"), 100, "latin1");
  b.write("0000000", 108, "latin1");
  b.write("0000000", 116, "latin1");
  b.write(h.sizeField ?? (h.size ?? 0).toString(8).padStart(11, "0"), 124, "latin1");
  b.write("00000000000", 136, "latin1");
  b.write(h.type ?? "0", 156, "latin1");
  if (h.linkname) b.write(h.linkname, 157, 100, "utf8");
  b.write("ustar\0", 257, "latin1");
  b.write("00", 263, "latin1");
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  if (h.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, "0") + "\0 ", 148, "latin1");
  return b;
}

/** A tar stream from raw pieces: headers and data, each data padded to 512, then the end marker. */
export function rawTar(parts: Array<Buffer | { data: Buffer }>, end = true): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (Buffer.isBuffer(p)) out.push(p);
    else out.push(p.data, Buffer.alloc((512 - (p.data.length % 512)) % 512));
  }
  if (end) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

export function gz(b: Buffer): Buffer {
  return gzipSync(b);
}

/** Split `b` into pieces of pseudo-random sizes, as a network would. */
export async function* pieces(b: Buffer, seed = 1): AsyncGenerator<Buffer> {
  const rnd = prng(seed);
  let pos = 0;
  while (pos < b.length) {
    const n = 1 + (rnd(2).readUInt16LE(0) % 70000);
    yield b.subarray(pos, pos + n);
    pos += n;
  }
}
