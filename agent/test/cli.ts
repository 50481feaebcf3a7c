import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const MAIN = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url));

/** Result of one `shoal` CLI run. */
export interface CliResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Run the real `shoal` CLI (same Node as the tests) and capture its output; never throws on exit codes. */
export function shoal(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [MAIN, ...args], { encoding: "buffer", maxBuffer: 1 << 30, timeout: opts.timeoutMs ?? 120_000, env: { ...process.env, ...opts.env } }, (err, stdout, stderr) => {
      if (err && typeof err.code !== "number") return reject(err);
      resolve({ code: typeof err?.code === "number" ? err.code : 0, stdout, stderr: stderr.toString() });
    });
  });
}
