/** Test helpers: a scripted HTTP server on 127.0.0.1 and a log-capturing logger. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../src/index.ts";

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

export interface FakeServer {
  host: string;
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1 whose handler sees the request with its body read. */
export async function fakeServer(handler: (req: SeenRequest, res: ServerResponse, raw: IncomingMessage) => void | Promise<void>): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((raw, res) => {
    const chunks: Buffer[] = [];
    raw.on("data", (c: Buffer) => chunks.push(c));
    raw.on("end", () => {
      const req = { method: raw.method ?? "", url: raw.url ?? "", headers: raw.headers, body: Buffer.concat(chunks) };
      requests.push(req);
      Promise.resolve(handler(req, res, raw)).catch((err: unknown) => {
        res.destroy(err as Error);
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    url: `http://${host}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A logger that keeps every line (fields and message) as JSON text. */
export function captureLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const log =
      (level: string) =>
      (obj: object, msg?: string): void => {
        lines.push(JSON.stringify({ level, ...bindings, ...obj, msg }));
      };
    return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error"), child: (b) => make({ ...bindings, ...b }) };
  };
  return Object.assign(make({}), { lines });
}

/** Runs `fn` and returns what it threw (fails if it did not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string; status?: number }> {
  try {
    await fn();
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error("expected an error");
}
