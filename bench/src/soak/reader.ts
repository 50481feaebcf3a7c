// One reader of the soak: reads random byte ranges of random files of a
// mounted image and compares each with the same range of the unpacked
// original. Prints one JSON line per read: {"r":"ok"|"failed"|"wrong","ms":N,"err"?:S}.
//   node reader.ts MOUNTPOINT REFERENCE_DIR FILES_JSON SEED
import { open } from "node:fs/promises";
import { join } from "node:path";
import { readFileSync } from "node:fs";

const [mount, reference, filesJson, seedText] = process.argv.slice(2) as [string, string, string, string];
const files = JSON.parse(readFileSync(filesJson, "utf8")) as Array<{ path: string; size: number }>;
let seed = Number(seedText) >>> 0 || 1;
const rand = () => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};

async function readRange(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const buf = Buffer.alloc(length);
    let got = 0;
    while (got < length) {
      const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

for (;;) {
  const f = files[Math.floor(rand() * files.length)]!;
  const whole = rand() < 0.25;
  const offset = whole ? 0 : Math.floor(rand() * f.size);
  const length = whole ? f.size : Math.min(f.size - offset, 1 + Math.floor(rand() * 1024 * 1024));
  const t = performance.now();
  let line: { r: string; ms: number; err?: string };
  try {
    const [got, want] = await Promise.all([readRange(join(mount, f.path), offset, length), readRange(join(reference, f.path), offset, length)]);
    line = { r: got.equals(want) ? "ok" : "wrong", ms: Math.round(performance.now() - t) };
    if (line.r === "wrong") line.err = `${f.path} @${offset}+${length}: ${got.length} bytes differ from the original`;
  } catch (err) {
    line = { r: "failed", ms: Math.round(performance.now() - t), err: `${f.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
