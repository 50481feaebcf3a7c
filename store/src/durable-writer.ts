/**
 * The store's durable writes, off the main thread. A chunk's publication is
 * a dozen system calls (create, write, fdatasync and close of each file, the
 * renames, the directory's fsync); through fs/promises each is a trip to the
 * thread pool and back, about 1 ms of the main thread per chunk, the thread
 * that also answers FUSE and verifies what arrives. Here a small pool of
 * worker threads makes the same calls synchronously, one message per step.
 *
 * Two steps, so that a put can still be given up between them:
 * `writeTemps` (each file created, written whole and fdatasynced; on failure
 * the ones it created are unlinked) and `publish` (renames in order, then
 * the directory's fsync). Errors keep their errno `code`.
 */
import { ShoalError } from "@shoal/base";
import { Worker } from "node:worker_threads";
import { StoreClosedError } from "./errors.ts";

/** Worker threads writing at once (fdatasync waits on the disk, not the CPU). */
export const DURABLE_WRITERS = 2;

/** One temp file to create: `path` (must not exist) with `bytes`. */
export interface TempFile {
  path: string;
  bytes: Uint8Array;
}

type Op = { kind: "temps"; dir: string | undefined; files: TempFile[] } | { kind: "publish"; renames: [from: string, to: string][]; dir: string };

type Reply = { id: number; err?: { message: string; code?: string } };

const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const fs = require("node:fs");
function temps(op) {
  if (op.dir) fs.mkdirSync(op.dir, { recursive: true });
  const made = [];
  try {
    for (const f of op.files) {
      const fd = fs.openSync(f.path, "wx", 0o644);
      made.push(f.path);
      try {
        let done = 0;
        while (done < f.bytes.length) done += fs.writeSync(fd, f.bytes, done);
        fs.fdatasyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
  } catch (err) {
    for (const p of made) try { fs.unlinkSync(p); } catch {}
    throw err;
  }
}
function publish(op) {
  for (const [from, to] of op.renames) fs.renameSync(from, to);
  const fd = fs.openSync(op.dir, "r");
  try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
}
parentPort.on("message", ({ id, op }) => {
  try {
    if (op.kind === "temps") temps(op); else publish(op);
    parentPort.postMessage({ id });
  } catch (err) {
    parentPort.postMessage({ id, err: { message: String(err && err.message), code: err && err.code } });
  }
});
`;

/**
 * A system call of a durable write failed in a writer thread: its message
 * (which names the errno and path), and the errno name as `errno`.
 */
export class WriteError extends ShoalError {
  readonly errno: string | undefined;
  constructor(message: string, errno: string | undefined) {
    super("SHOAL_ERR_INTERNAL", message);
    this.errno = errno;
  }
}

/** A pool of writer threads; `close` ends them once their work is done. */
export class DurableWriter {
  private readonly workers: { worker: Worker; pending: number }[] = [];
  private readonly waiting = new Map<number, { resolve: () => void; reject: (err: Error) => void; slot: { worker: Worker; pending: number } }>();
  private nextId = 0;
  private closed = false;

  constructor(threads = DURABLE_WRITERS) {
    for (let i = 0; i < threads; i++) {
      const slot = { worker: undefined as unknown as Worker, pending: 0 };
      this.start(slot);
      this.workers.push(slot);
    }
  }

  /** (Re)start `slot`'s thread: a thread that died fails what it held, and a fresh one takes its place. */
  private start(slot: { worker: Worker; pending: number }): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.unref();
    worker.on("message", (r: Reply) => this.settle(r));
    worker.on("error", (err) => this.failAll(slot, err));
    worker.on("exit", () => {
      this.failAll(slot, new ShoalError("SHOAL_ERR_INTERNAL", "a store writer thread exited"));
      if (!this.closed && slot.worker === worker) this.start(slot);
    });
    slot.worker = worker;
  }

  /** Create each of `files` whole and fdatasync it (making `dir` first when given); all or none are left. */
  writeTemps(files: TempFile[], dir?: string): Promise<void> {
    return this.run({ kind: "temps", dir, files });
  }

  /** Rename each `[from, to]` in order, then fsync `dir` so the renames are durable. */
  publish(renames: [from: string, to: string][], dir: string): Promise<void> {
    return this.run({ kind: "publish", renames, dir });
  }

  /** End the threads; operations still running settle first (callers await theirs before closing). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.worker.terminate()));
  }

  private run(op: Op): Promise<void> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    const slot = this.workers.reduce((a, b) => (b.pending < a.pending ? b : a));
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      if (slot.pending++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, op });
    });
  }

  private settle(r: Reply): void {
    const w = this.waiting.get(r.id);
    if (!w) return;
    this.waiting.delete(r.id);
    if (--w.slot.pending === 0) w.slot.worker.unref();
    if (!r.err) return w.resolve();
    w.reject(new WriteError(r.err.message, r.err.code));
  }

  private failAll(slot: { worker: Worker; pending: number }, err: Error): void {
    for (const [id, w] of this.waiting) {
      if (w.slot !== slot) continue;
      this.waiting.delete(id);
      slot.pending--;
      w.reject(err);
    }
  }
}
