import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { rm } from "node:fs/promises";
import { InvalidArgumentError, ShoalError } from "@shoal/blockindex";
import type { Logger } from "pino";

/** A route handler: gets the parsed JSON body (or undefined) and the query, returns a JSON-able result. */
export type Handler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

const MAX_BODY = 1 << 20;

/** HTTP status for an error: typed errors by code, anything else 500. */
function statusOf(err: unknown): number {
  if (!(err instanceof ShoalError)) return 500;
  if (err instanceof InvalidArgumentError || /INVALID|NO_MOUNTPOINT|BAD_|NOT_CONVERTED/.test(err.code)) return 400;
  if (/NOT_FOUND|NOT_MOUNTED|UNKNOWN/.test(err.code)) return 404;
  if (/BUSY|ALREADY/.test(err.code)) return 409;
  return 502;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const piece of req) {
    size += (piece as Buffer).length;
    if (size > MAX_BODY) throw new InvalidArgumentError("request body too large");
    parts.push(piece as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new InvalidArgumentError("request body is not JSON");
  }
}

/**
 * The agent's control API: JSON over HTTP on a unix socket. Routes are
 * `"METHOD /path"` keys. Errors answer `{ code, message }` with a status
 * derived from the error code; unexpected errors are logged and answered 500.
 */
export async function serveApi(socketPath: string, routes: Record<string, Handler>, logger: Logger): Promise<Server> {
  const log = logger.child({ component: "api" });
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://agent");
    const handler = routes[`${req.method} ${url.pathname}`];
    const reply = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (!handler) return reply(404, { code: "SHOAL_ERR_NOT_FOUND", message: `no route ${req.method} ${url.pathname}` });
    readBody(req)
      .then((body) => handler(body, url.searchParams))
      .then((result) => reply(200, result ?? {}))
      .catch((err: unknown) => {
        const status = statusOf(err);
        if (status === 500) log.error({ err, route: `${req.method} ${url.pathname}` }, "request failed");
        const code = err instanceof ShoalError ? err.code : "SHOAL_ERR_INTERNAL";
        reply(status, { code, message: (err as Error).message });
      });
  });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}
