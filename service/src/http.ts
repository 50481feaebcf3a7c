/**
 * The HTTP edge every shoal daemon shares: listening on TCP or a unix
 * socket, closing, JSON bodies in and out, and errors answered once as
 * `{code, message}` with the status the error set gives their code.
 */
import { rm } from "node:fs/promises";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { BadRequestError, errorBody, httpStatusOf, ShoalError } from "@shoal/base";

/** A host and TCP port to listen on (port 0: any free port). */
export interface ListenAddress {
  host: string;
  port: number;
}

/** Listen on `addr` (with `reusePort`: others may listen on the same port too, SO_REUSEPORT); resolves the bound address. */
export function listenTcp(server: Server, addr: ListenAddress, opts: { reusePort?: boolean } = {}): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port: addr.port, host: addr.host, ...(opts.reusePort === true ? { reusePort: true } : {}) }, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Listen on the unix socket `path` (a stale socket file there is removed first). */
export async function listenUnix(server: Server, path: string): Promise<void> {
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** `http://HOST:PORT` of a bound address (IPv6 in brackets). */
export function baseUrl(a: AddressInfo): string {
  return `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
}

/** Stop accepting, drop every connection, resolve once closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** A JSON answer, whole: its status, headers and body (for whoever writes it: a response here, a message to a thread). */
export interface JsonAnswer {
  status: number;
  headers: { "content-type": string; "content-length": number };
  body: string;
}

/** `body` as a JSON answer with `status`. */
export function jsonAnswer(status: number, body: unknown): JsonAnswer {
  const text = JSON.stringify(body);
  return { status, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(text) }, body: text };
}

/** `err` as the JSON answer `{code, message}` with its status. */
export function errorAnswer(err: unknown): JsonAnswer {
  return jsonAnswer(httpStatusOf(err), errorBody(err));
}

/** Send `body` as JSON with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const a = jsonAnswer(status, body);
  res.writeHead(a.status, a.headers).end(a.body);
}

/** Answer `err` as `{code, message}` with its status; a response already under way is cut off instead. */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, httpStatusOf(err), errorBody(err));
}

/**
 * The JSON body of `req`, or undefined for an empty body. Throws
 * `BadRequestError` for a body over `maxBytes` (read on and discarded up to
 * 16× the limit, so that the caller sees the answer rather than a reset) or
 * one that is not JSON.
 */
export async function readJson(req: IncomingMessage, opts: { maxBytes: number; signal?: AbortSignal }): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req) {
    opts.signal?.throwIfAborted();
    size += (part as Buffer).length;
    if (size > opts.maxBytes * 16) break;
    if (size <= opts.maxBytes) parts.push(part as Buffer);
  }
  if (size > opts.maxBytes) throw new ShoalError("SHOAL_ERR_BODY_TOO_LARGE", `request body larger than ${opts.maxBytes} bytes`);
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch (err) {
    throw new BadRequestError("request body is not valid JSON", { cause: err });
  }
}
