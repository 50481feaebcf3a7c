/**
 * The supernode's API on more than one thread (`--api-threads`). A supernode
 * is one Node thread, and in a peak serving the startup chunks over HTTP
 * took it all: what a chunk costs there is mostly the sockets' writes
 * (bench/src/supernode-serve.ts). Here threads listen on the API's port in
 * the main thread's place (`SO_REUSEPORT`: the kernel spreads the
 * connections over them) and hold their callers' connections:
 * - a chunk request is answered by the main thread's `answerChunks` (access
 *   check, cache, origin, metrics), its headers and bytes sent over a
 *   message channel; the thread writes them to its socket and says what
 *   its socket took, and the main thread sends at most `WINDOW_BYTES`
 *   ahead of that (a slow caller holds its answer back, as the main
 *   thread's own sockets do);
 * - every other request goes to the main thread's handler as it is, through
 *   a unix socket of the main thread's (`ApiThreadsInit.socketPath`).
 * All state stays on the main thread; a thread that dies is started again.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import { Worker } from "node:worker_threads";
import { AbortedError, httpStatusOf, ShoalError } from "@shoal/base";
import { closeServer, errorAnswer, listenUnix } from "@shoal/service";
import { CHUNKS_PREFIX } from "@shoal/swarm";
import type { Logger } from "pino";
import { requestUrl, type ChunkSink, type RequestHead } from "./api.ts";

/** Settings of `ApiThreads`. */
export interface ApiThreadsInit {
  /** Threads beside the main one, each listening on `host:port` (which the main thread bound with `reusePort`, and leaves to them once they listen). */
  threads: number;
  host: string;
  port: number;
  /** Where the main thread takes the requests the threads pass on. */
  socketPath: string;
}

/** What the threads need of the main thread: the API's handler, and the chunk route's answer into a sink. */
export interface ApiThreadsComponents {
  handler: RequestListener;
  answerChunks(req: RequestHead, url: URL, signal: AbortSignal, sink: ChunkSink): Promise<void>;
  logger: Logger;
}

/** From a thread: a chunk request; its caller gone; the bytes of an answer its socket took so far. */
type Call = { id: number; url: string; headers: RequestHead["headers"] } | { id: number; abort: true } | { id: number; acked: number };

/**
 * Bytes of an answer the main thread sends ahead of what the thread's
 * socket took; the thread acknowledges every `ACK_BYTES`, and once its
 * socket drains.
 */
const WINDOW_BYTES = 8 * 1024 * 1024;
const ACK_BYTES = 2 * 1024 * 1024;

/** What a thread answers when the main thread does not take a request it passes on (it is shutting down). */
const UNAVAILABLE = errorAnswer(new ShoalError("SHOAL_ERR_SHUTTING_DOWN", "the supernode's main thread did not take the request"));

/** A chunk request being answered: to abort it; its bytes sent and acknowledged, and what resumes it when the window is full. */
interface Answering {
  ac: AbortController;
  sent: number;
  acked: number;
  paused?: { until: Promise<void>; resume(): void };
}

/** The thread: an HTTP server on the shared port; chunk requests over the channel, the rest through the unix socket. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const http = require("node:http");
const { host, port, socketPath, chunksPrefix, ackBytes, unavailable } = workerData;
const calls = new Map();
let next = 0;
parentPort.on("message", (m) => calls.get(m.id)?.(m));
const fail = (res) => {
  if (res.headersSent) return void res.destroy();
  res.writeHead(unavailable.status, unavailable.headers).end(unavailable.body);
};
function chunks(req, res) {
  const id = next++;
  let waiting = false;
  let written = 0;
  let acked = 0;
  const ack = () => {
    acked = written;
    parentPort.postMessage({ id, acked });
  };
  calls.set(id, (m) => {
    if (m.head) res.writeHead(m.head.status, m.head.headers);
    if (m.part) {
      written += m.part.byteLength;
      // what the socket took is acknowledged, so the main thread sends on; a slow caller's full socket holds it back
      if (res.write(Buffer.from(m.part.buffer, m.part.byteOffset, m.part.byteLength))) {
        if (written - acked >= ackBytes) ack();
      } else if (!waiting) {
        waiting = true;
        res.once("drain", () => {
          waiting = false;
          ack();
        });
      }
    }
    if (m.body !== undefined) res.end(m.body);
    else if (m.end) res.end();
    else if (m.cut) res.destroy();
    if (m.body !== undefined || m.end || m.cut) calls.delete(id);
  });
  res.on("close", () => {
    if (calls.delete(id)) parentPort.postMessage({ id, abort: true });
  });
  parentPort.postMessage({ id, url: req.url, headers: req.headers });
}
function pass(req, res) {
  const up = http.request({ socketPath, method: req.method, path: req.url, headers: req.headers }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  up.on("error", () => fail(res));
  res.on("close", () => up.destroy());
  req.pipe(up);
}
const server = http.createServer((req, res) => {
  if (req.method === "GET" && (req.url || "").startsWith(chunksPrefix)) chunks(req, res);
  else pass(req, res);
});
server.on("error", (err) => parentPort.postMessage({ failed: String(err && err.message) }));
server.listen({ host, port, reusePort: true }, () => parentPort.postMessage({ listening: true }));
`;

/** The extra API threads of one supernode; see the module comment. */
export class ApiThreads {
  readonly #c: ApiThreadsComponents;
  readonly #init: ApiThreadsInit;
  readonly #local: Server;
  readonly #threads = new Set<Worker>();
  readonly #log: Logger;
  #closed = false;

  private constructor(c: ApiThreadsComponents, init: ApiThreadsInit, local: Server) {
    this.#c = c;
    this.#init = init;
    this.#local = local;
    this.#log = c.logger.child({ component: "api-threads" });
  }

  /** Listen on the unix socket, then start the threads; resolves once each listens (rejects, all stopped, when one cannot). */
  static async start(c: ApiThreadsComponents, init: ApiThreadsInit): Promise<ApiThreads> {
    const local = createServer(c.handler);
    await listenUnix(local, init.socketPath);
    const threads = new ApiThreads(c, init, local);
    try {
      await Promise.all(Array.from({ length: init.threads }, () => threads.#spawn()));
    } catch (err) {
      await threads.close();
      throw err;
    }
    threads.#log.info({ threads: init.threads, port: init.port }, "API connections taken by threads of their own");
    return threads;
  }

  /** Start one thread; resolves once it listens. Once listening, a thread that exits is started again. */
  #spawn(): Promise<void> {
    const { host, port, socketPath } = this.#init;
    const thread = new Worker(THREAD_SOURCE, { eval: true, workerData: { host, port, socketPath, chunksPrefix: CHUNKS_PREFIX, ackBytes: ACK_BYTES, unavailable: UNAVAILABLE } });
    this.#threads.add(thread);
    const calls = new Map<number, Answering>();
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      thread.on("message", (m: Call | { listening: true } | { failed: string }) => {
        if ("listening" in m) {
          listening = true;
          resolve();
        } else if ("failed" in m) {
          reject(new ShoalError("SHOAL_ERR_INTERNAL", `an API thread could not listen on ${host}:${port}: ${m.failed}`));
        } else if ("abort" in m) {
          const a = calls.get(m.id);
          a?.ac.abort(new AbortedError("client went away"));
          a?.paused?.resume();
        } else if ("acked" in m) {
          const a = calls.get(m.id);
          if (!a) return;
          a.acked = m.acked;
          if (a.paused && a.sent - a.acked <= WINDOW_BYTES) {
            a.paused.resume();
            delete a.paused;
          }
        } else {
          this.#answer(thread, calls, m);
        }
      });
      thread.on("error", (err) => this.#log.error({ err }, "an API thread failed"));
      thread.on("exit", () => {
        this.#threads.delete(thread);
        for (const a of calls.values()) {
          a.ac.abort(new AbortedError("API thread exited"));
          a.paused?.resume();
        }
        if (!listening) reject(new ShoalError("SHOAL_ERR_INTERNAL", "an API thread exited before it listened"));
        else if (!this.#closed) {
          this.#log.error("an API thread exited; starting another");
          this.#spawn().catch((err: unknown) => this.#log.error({ err }, "could not start an API thread again"));
        }
      });
    });
  }

  /** Answer one chunk request of `thread` into messages back to it. */
  #answer(thread: Worker, calls: Map<number, Answering>, m: { id: number; url: string; headers: RequestHead["headers"] }): void {
    const ac = new AbortController();
    const answering: Answering = { ac, sent: 0, acked: 0 };
    calls.set(m.id, answering);
    let headSent = false;
    let closed = false;
    const post = (msg: object) => {
      if (!closed) thread.postMessage({ id: m.id, ...msg });
    };
    const sink: ChunkSink = {
      head: (status, headers) => {
        headSent = true;
        post({ head: { status, headers } });
      },
      // the hot chunks' memory is shared with the thread as it is; other bytes are copied (exactly the chunk: a view's whole buffer would be cloned with it)
      write: (bytes) => {
        post({ part: bytes.buffer instanceof SharedArrayBuffer || bytes.byteLength === bytes.buffer.byteLength ? bytes : Uint8Array.prototype.slice.call(bytes) });
        answering.sent += bytes.byteLength;
        if (answering.sent - answering.acked <= WINDOW_BYTES || ac.signal.aborted) return;
        let resume!: () => void;
        const until = new Promise<void>((r) => (resume = r));
        answering.paused = { until, resume };
        return until;
      },
      end: () => post({ end: true }),
      cut: () => post({ cut: true }),
      closed: () => closed || ac.signal.aborted,
    };
    const finish = () => {
      closed = true;
      calls.delete(m.id);
    };
    const req = { url: m.url, headers: m.headers };
    // a malformed URL is refused as the main thread's handler refuses it
    Promise.resolve().then(() => this.#c.answerChunks(req, requestUrl(req), ac.signal, sink)).then(finish, (err: unknown) => {
      if (headSent) post({ cut: true });
      else {
        const { status, headers, body } = errorAnswer(err);
        post({ head: { status, headers }, body });
      }
      if (httpStatusOf(err) >= 500) this.#log.warn({ path: m.url.split("?")[0], err }, "request failed");
      finish();
    });
  }

  /** Stop the threads (their connections drop) and the unix socket. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#threads].map((t) => t.terminate()));
    await closeServer(this.#local);
  }
}
