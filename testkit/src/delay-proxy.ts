/**
 * An HTTP proxy on loopback in front of a registry (or a supernode) that
 * holds every request matching `held` (default: blob GETs) for a while
 * before forwarding it, and counts them and how many are under way at once:
 * what a far registry looks like to the read path, and how a test sees
 * whether fetches overlap or happen at all. `answer` may answer a request
 * itself instead (a lying server).
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A running delay proxy. */
export interface DelayProxy {
  /** `127.0.0.1:PORT`: use it as the registry part of references. */
  readonly host: string;
  /** Most held requests under way at once since start or `reset()`. */
  readonly maxInFlight: number;
  /** Held requests since start or `reset()`. */
  readonly blobRequests: number;
  /** The `Range` headers of the held requests since start or `reset()`, in the order they arrived ("" for none). */
  readonly ranges: readonly string[];
  reset(): void;
  /** From now on, send only the first `pauseAfter` body bytes of each held answer, until `release()`. */
  hold(): void;
  /** Let the answers held by `pauseAfter` go on (and every later one pass whole). */
  release(): void;
  stop(): Promise<void>;
}

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

/** What `answer` answers in the target's stead. */
export interface ProxyAnswer {
  status: number;
  body: string | Buffer;
}

/** Start a proxy to `target` (`host:port`, plain HTTP) delaying each held request by `delayMs`. */
export async function startDelayProxy(init: {
  target: string; delayMs?: number; held?: RegExp; answer?: (method: string, path: string) => ProxyAnswer | undefined;
  /** After `hold()`, send only the first this many body bytes of each held answer until `release()` (a far registry mid-answer). */
  pauseAfter?: number;
}): Promise<DelayProxy> {
  const held = init.held ?? BLOB_GET;
  let released = true;
  /** Flushes of the answers held now. */
  const waiting: Array<() => void> = [];
  const [targetHost, targetPort] = init.target.split(":");
  let inFlight = 0;
  let maxInFlight = 0;
  let blobRequests = 0;
  let ranges: string[] = [];
  const forward = (req: IncomingMessage, res: ServerResponse, pause = false) => {
    const up = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      if (!pause || released || init.pauseAfter === undefined) return void upRes.pipe(res);
      // the first pauseAfter bytes now, the rest once released
      let sent = 0;
      const held: Buffer[] = [];
      let ended = false;
      let flushed = false;
      const flush = () => {
        flushed = true;
        for (const b of held.splice(0)) res.write(b);
        if (ended) res.end();
      };
      waiting.push(flush);
      upRes.on("data", (piece: Buffer) => {
        if (flushed) return void res.write(piece);
        const now = piece.subarray(0, Math.max(0, init.pauseAfter! - sent));
        if (now.length > 0) res.write(now);
        sent += now.length;
        if (now.length < piece.length) held.push(piece.subarray(now.length));
      });
      upRes.on("end", () => {
        ended = true;
        if (flushed) res.end();
      });
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    const own = init.answer?.(req.method ?? "GET", path);
    if (own) {
      req.resume();
      res.writeHead(own.status, { "content-type": "application/json" });
      return void res.end(own.body);
    }
    if (!(req.method === "GET" && held.test(path))) return forward(req, res);
    blobRequests++;
    ranges.push(String(req.headers.range ?? ""));
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.on("close", () => inFlight--);
    setTimeout(() => forward(req, res, true), init.delayMs ?? 0);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get maxInFlight() {
      return maxInFlight;
    },
    get blobRequests() {
      return blobRequests;
    },
    get ranges() {
      return ranges;
    },
    hold() {
      released = false;
    },
    release() {
      released = true;
      for (const w of waiting.splice(0)) w();
    },
    reset() {
      maxInFlight = inFlight;
      blobRequests = 0;
      ranges = [];
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
