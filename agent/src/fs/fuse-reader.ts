/**
 * How requests are read off /dev/fuse. Two readers, one contract:
 *
 * - `poll` (the default): the main thread's event loop polls the device fd
 *   (libuv, through Node's pipe handle) and reads each request as it comes.
 *   A request reaches its handler without a thread hop: about 30–40 µs less
 *   per request than `thread` on this project's machines (bench/RESULTS.md,
 *   "The FUSE path").
 * - `thread`: a worker thread blocks in read(2) and posts each request to the
 *   main thread. Used when this Node.js lacks the pipe handle.
 *
 * Neither holds a libuv thread-pool thread, so the process may read its own
 * mount with asynchronous fs calls. Both read one whole request per read(2)
 * (the kernel never splits one), into a buffer of `READ_BUFFER` bytes or more,
 * which the kernel requires to hold a WRITE of `max_write` bytes.
 */
import { ShoalError } from "@shoal/base";
import { closeSync } from "node:fs";
import { getSystemErrorName } from "node:util";
import { Worker } from "node:worker_threads";

/** Bytes one read(2) of a poll reader gets (libuv's read size); `MAX_WRITE` must leave room for the WRITE header in it. */
export const POLL_READ_BUFFER = 64 * 1024;

/** Which reader; see the module comment. */
export type FuseReaderKind = "poll" | "thread";

/** What a reader tells its device. */
export interface FuseReaderEvents {
  /** One request, as the kernel wrote it. */
  request(buf: Buffer): void;
  /** Reading stopped for good: `error` is undefined when the connection ended (ENODEV), else the errno name. */
  end(error: string | undefined): void;
}

/** A running reader of one device fd. It owns the fd from `startFuseReader` on. */
export interface FuseReader {
  readonly kind: FuseReaderKind;
  /** Resolves once reading has stopped (after `end`). */
  readonly stopped: Promise<void>;
  /** Close the fd; only after `stopped`. */
  close(): void;
  /** Keep the fd open but stop holding the process alive (a connection that cannot be ended: the reader waits on). */
  unref(): void;
}

/** Start reading `fd` with `kind`, or the best reader this Node.js has (`poll`, else `thread`). */
export function startFuseReader(fd: number, size: number, events: FuseReaderEvents, kind?: FuseReaderKind): FuseReader {
  const handle = kind === "thread" ? undefined : pipeHandle();
  if (kind === "poll" && !handle) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", "this Node.js has no pipe handle to poll /dev/fuse with");
  return handle ? pollReader(handle, fd, events) : threadReader(fd, size, events);
}

/** The parts of Node's internal pipe handle (`pipe_wrap`) and stream state (`stream_wrap`) a poll reader uses. */
interface PipeHandle {
  open(fd: number): number;
  readStart(): number;
  readStop(): number;
  close(cb?: () => void): void;
  unref(): void;
  onread: (ab: ArrayBuffer | undefined) => void;
}
interface Bindings {
  Pipe: new (type: number) => PipeHandle;
  SOCKET: number;
  state: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
}

let bindings: Bindings | null | undefined;

/** Node's pipe handle and stream state, or undefined when this Node.js does not have them. */
function pipeBindings(): Bindings | undefined {
  if (bindings !== undefined) return bindings ?? undefined;
  bindings = null;
  try {
    const binding = (process as unknown as { binding(name: string): Record<string, unknown> }).binding;
    const pipe = binding("pipe_wrap") as { Pipe?: Bindings["Pipe"]; constants?: { SOCKET?: number } };
    const stream = binding("stream_wrap") as { streamBaseState?: Int32Array; kReadBytesOrError?: number; kArrayBufferOffset?: number };
    if (typeof pipe.Pipe === "function" && typeof pipe.constants?.SOCKET === "number" && stream.streamBaseState instanceof Int32Array
      && typeof stream.kReadBytesOrError === "number" && typeof stream.kArrayBufferOffset === "number") {
      bindings = {
        Pipe: pipe.Pipe, SOCKET: pipe.constants.SOCKET, state: stream.streamBaseState,
        kReadBytesOrError: stream.kReadBytesOrError, kArrayBufferOffset: stream.kArrayBufferOffset,
      };
    }
  } catch {
    // no process.binding, or not these: the thread reader serves
  }
  return bindings ?? undefined;
}

function pipeHandle(): { handle: PipeHandle; b: Bindings } | undefined {
  const b = pipeBindings();
  return b ? { handle: new b.Pipe(b.SOCKET), b } : undefined;
}

function pollReader({ handle, b }: { handle: PipeHandle; b: Bindings }, fd: number, events: FuseReaderEvents): FuseReader {
  let done!: () => void;
  const stopped = new Promise<void>((res) => (done = res));
  const stop = (error: string | undefined) => {
    handle.readStop();
    events.end(error);
    done();
  };
  handle.onread = (ab) => {
    const n = b.state[b.kReadBytesOrError]!;
    if (n > 0 && ab) return events.request(Buffer.from(ab, b.state[b.kArrayBufferOffset]!, n));
    if (n >= 0) return;
    const code = getSystemErrorName(n);
    // ENOENT: a request was withdrawn while it was copied out; the next one comes as usual
    if (code === "ENOENT" && handle.readStart() === 0) return;
    stop(code === "ENODEV" || code === "EOF" ? undefined : code);
  };
  const started = handle.open(fd) || handle.readStart();
  if (started !== 0) queueMicrotask(() => stop(getSystemErrorName(started)));
  return {
    kind: "poll",
    stopped,
    // libuv closes the fd with the handle
    close: () => handle.close(),
    unref: () => handle.unref(),
  };
}

/** The thread reader: blocking reads of /dev/fuse, one request per message. */
const READER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { readSync } = require("node:fs");
const buf = Buffer.allocUnsafe(workerData.size);
for (;;) {
  let n;
  try {
    n = readSync(workerData.fd, buf, 0, buf.length, null);
  } catch (err) {
    if (err.code === "EINTR" || err.code === "EAGAIN" || err.code === "ENOENT") continue;
    parentPort.postMessage({ end: err.code === "ENODEV" ? null : String(err.code || err) });
    break;
  }
  const ab = new ArrayBuffer(n);
  new Uint8Array(ab).set(buf.subarray(0, n));
  parentPort.postMessage(ab, [ab]);
}
`;

function threadReader(fd: number, size: number, events: FuseReaderEvents): FuseReader {
  const worker = new Worker(READER_SOURCE, { eval: true, workerData: { fd, size } });
  let ended = false;
  const end = (error: string | undefined) => {
    if (ended) return;
    ended = true;
    events.end(error);
  };
  const stopped = new Promise<void>((res) => worker.once("exit", () => {
    end("the reader thread exited");
    res();
  }));
  worker.on("message", (msg: ArrayBuffer | { end: string | null }) => {
    if (msg instanceof ArrayBuffer) events.request(Buffer.from(msg));
    else end(msg.end ?? undefined);
  });
  worker.on("error", (err) => end(String(err)));
  return { kind: "thread", stopped, close: () => closeSync(fd), unref: () => worker.unref() };
}
