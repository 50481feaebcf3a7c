/** A progress line a task reports to as it goes. */
export interface Progress {
  /** Set the done/total counts (bytes); `total` 0 means unknown. */
  update(done: number, total: number): void;
  /** Finish the line with a closing note. */
  done(note: string): void;
}

function human(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export { human as humanBytes };

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
      stream.write(`\r\x1b[2K${label} [${bar}] ${pct} ${human(done)}${total > 0 ? ` / ${human(total)}` : ""}`);
    },
    done(note) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      stream.write(`${tty ? "\r\x1b[2K" : ""}${label} ${note} (${secs}s)\n`);
    },
  };
}
