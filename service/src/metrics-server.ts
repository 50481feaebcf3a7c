/** The HTTP listener of a daemon: Prometheus metrics and the live status page. */
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import { baseUrl, closeServer, listenTcp, sendError, sendJson, type ListenAddress } from "./http.ts";
import type { Component } from "./lifecycle.ts";
import { STATUS_PAGE_DATA_PATH, statusPageResponse, type StatusPage } from "./status-page.ts";

/**
 * Serves `registry` as Prometheus text at `GET /metrics` on `listen` (port
 * 0: any free port) and, when given, the status `page` at `GET /` with its
 * data at `GET /v1/page`; other paths answer 404. `refresh` runs before each
 * scrape, to set gauges from live state.
 */
export class MetricsServer implements Component {
  readonly #registry: Registry;
  readonly #listen: ListenAddress;
  readonly #refresh: (() => void) | undefined;
  readonly #page: StatusPage | undefined;
  #server: Server | undefined;
  /** `http://HOST:PORT` once started. */
  url: string | undefined;

  constructor(components: { registry: Registry; refresh?: () => void; page?: StatusPage }, init: { listen: ListenAddress }) {
    this.#registry = components.registry;
    this.#refresh = components.refresh;
    this.#page = components.page;
    this.#listen = init.listen;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const page = this.#page;
      if (req.method === "GET" && page && path === "/") {
        const { headers, body } = statusPageResponse(page.html);
        res.writeHead(200, headers).end(body);
        return;
      }
      if (req.method === "GET" && page && path === STATUS_PAGE_DATA_PATH) {
        page.data(req).then((data) => sendJson(res, 200, data), (err: unknown) => sendError(res, err));
        return;
      }
      if (path !== "/metrics") {
        res.writeHead(404).end("not found\n");
        return;
      }
      this.#refresh?.();
      this.#registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.#registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    this.url = baseUrl(await listenTcp(server, this.#listen));
    this.#server = server;
  }

  async stop(): Promise<void> {
    if (this.#server) await closeServer(this.#server);
    this.#server = undefined;
  }
}
