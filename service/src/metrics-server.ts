/** The Prometheus endpoint of a daemon. */
import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";
import { baseUrl, closeServer, listenTcp, type ListenAddress } from "./http.ts";
import type { Component } from "./lifecycle.ts";

/**
 * Serves `registry` as Prometheus text at `GET /metrics` on `listen` (port
 * 0: any free port); other paths answer 404. `refresh` runs before each
 * scrape, to set gauges from live state.
 */
export class MetricsServer implements Component {
  readonly #registry: Registry;
  readonly #listen: ListenAddress;
  readonly #refresh: (() => void) | undefined;
  #server: Server | undefined;
  /** `http://HOST:PORT` once started. */
  url: string | undefined;

  constructor(components: { registry: Registry; refresh?: () => void }, init: { listen: ListenAddress }) {
    this.#registry = components.registry;
    this.#refresh = components.refresh;
    this.#listen = init.listen;
  }

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (req.url !== "/metrics") {
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
