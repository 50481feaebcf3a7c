import { humanBytes } from "@shoal/base";
import type { Progress } from "@shoal/convert";

/**
 * Progress lines on `stream` (stderr): a redrawn bar on a TTY, at most one
 * plain line per label otherwise (when done), so logs stay readable.
 */
export function progressLine(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  let last = 0;
  const started = Date.now();
  return {
    update(done, total) {
      if (!tty) return;
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const width = 30;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const bar = "#".repeat(Math.round(frac * width)).padEnd(width, ".");
      const pct = total > 0 ? `${(frac * 100).toFixed(0).padStart(3)}%` : "    ";
      stream.write(`\r\x1b[2K${label} [${bar}] ${pct} ${humanBytes(done)}${total > 0 ? ` / ${humanBytes(total)}` : ""}`);
    },
    done(note) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      stream.write(`${tty ? "\r\x1b[2K" : ""}${label} ${note} (${secs}s)\n`);
    },
  };
}
