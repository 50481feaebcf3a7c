/**
 * An HTTP proxy on loopback in front of a registry that holds every blob
 * GET for a while before forwarding it and counts how many are held at
 * once: what a far registry looks like to the read path, and how a test
 * sees whether fetches overlap.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** A running delay proxy. */
export interface DelayProxy {
  /** `127.0.0.1:PORT`: use it as the registry part of references. */
  readonly host: string;
  /** Most blob GETs under way at once since start or `reset()`. */
  readonly maxInFlight: number;
  /** Blob GETs since start or `reset()`. */
  readonly blobRequests: number;
  reset(): void;
  stop(): Promise<void>;
}

const BLOB_GET = /^\/v2\/.+\/blobs\/sha256:[0-9a-f]{64}$/;

/** Start a proxy to `target` (`host:port`, plain HTTP) delaying each blob GET by `delayMs`. */
export async function startDelayProxy(init: { target: string; delayMs: number }): Promise<DelayProxy> {
  const [targetHost, targetPort] = init.target.split(":");
  let inFlight = 0;
  let maxInFlight = 0;
  let blobRequests = 0;
  const forward = (req: IncomingMessage, res: ServerResponse) => {
    const up = request({ host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  };
  const server = createServer((req, res) => {
    const blob = req.method === "GET" && BLOB_GET.test((req.url ?? "").split("?")[0]!);
    if (!blob) return forward(req, res);
    blobRequests++;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    res.on("close", () => inFlight--);
    setTimeout(() => forward(req, res), init.delayMs);
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
    reset() {
      maxInFlight = inFlight;
      blobRequests = 0;
    },
    stop: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
