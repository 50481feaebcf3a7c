import { errorBody, httpStatusOf, InvalidArgumentError } from "@shoal/base";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { rm } from "node:fs/promises";
import type { Logger } from "pino";

/** A route handler: gets the parsed JSON body (or undefined) and the query, returns a JSON-able result. */
export type Handler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

const MAX_BODY = 1 << 20;

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
 * `"METHOD /path"` keys. Errors answer `{ code, message }` (`errorBody`) with
 * the status the error set gives their code (`httpStatusOf`); failures of
 * ours (5xx) are logged.
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
        const status = httpStatusOf(err);
        if (status >= 500) log.error({ err, route: `${req.method} ${url.pathname}` }, "request failed");
        reply(status, errorBody(err));
      });
  });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  return server;
}
