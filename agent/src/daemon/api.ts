import { httpStatusOf, ShoalError } from "@shoal/base";
import { listenUnix, readJson, sendError, sendJson } from "@shoal/service";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";

/** A route handler: gets the parsed JSON body (or undefined) and the query, returns a JSON-able result. */
export type Handler = (body: unknown, query: URLSearchParams) => Promise<unknown>;

const MAX_BODY = 1 << 20;

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
    if (!handler) return sendError(res, new ShoalError("SHOAL_ERR_NOT_FOUND", `no route ${req.method} ${url.pathname}`));
    readJson(req, { maxBytes: MAX_BODY })
      .then((body) => handler(body, url.searchParams))
      .then((result) => sendJson(res, 200, result ?? {}))
      .catch((err: unknown) => {
        if (httpStatusOf(err) >= 500) log.error({ err, route: `${req.method} ${url.pathname}` }, "request failed");
        sendError(res, err);
      });
  });
  await listenUnix(server, socketPath);
  return server;
}
