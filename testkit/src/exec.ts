/**
 * Running external tools (tar, umoci, skopeo, getfattr) from tests.
 */
import { execFile } from "node:child_process";

/** Result of {@link run}: captured output as UTF-8 (binary output is not expected). */
export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs `cmd args` without a shell and resolves with its output. Rejects with
 * an Error naming the command, its exit status and stderr when it exits
 * non-zero, is killed, or `signal` aborts. Output is limited to 256 MiB.
 * `env` entries are added to the inherited environment.
 */
export function run(
  cmd: string, args: readonly string[], opts: { signal?: AbortSignal; cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd, args,
      {
        maxBuffer: 256 * 1024 * 1024, encoding: "utf8", signal: opts.signal, cwd: opts.cwd,
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
      },
      (err, stdout, stderr) => {
        if (err) {
          const code = (err as { code?: unknown }).code;
          reject(new Error(`${cmd} ${args.join(" ")} failed (${String(code ?? err.message)}): ${stderr.trim()}`, { cause: err }));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/** Whether `cmd` can be executed (looked up on PATH). */
export async function haveCommand(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v "$1" >/dev/null`, "sh", cmd]);
    return true;
  } catch {
    return false;
  }
}
