import { randomBytes } from "node:crypto";
import type { ChildProcess } from "node:child_process";
import { request as httpRequest } from "node:http";
import { createInterface } from "node:readline";

/**
 * The `docker-registry serve` configuration the test registries use: JSON
 * logs at info level (the request log the byte counts come from), filesystem
 * storage in `dataDir`, deletes on, upload purging off, listening on `addr`
 * (`HOST:PORT`), plus an optional `auth:` block.
 */
export function registryConfigYaml(dataDir: string, addr: string, auth = ""): string {
  return [
    "version: 0.1",
    "log:",
    "  level: info",
    "  formatter: json",
    "  accesslog:",
    "    disabled: true",
    "storage:",
    "  filesystem:",
    `    rootdirectory: ${JSON.stringify(dataDir)}`,
    "  delete:",
    "    enabled: true",
    "  maintenance:",
    "    uploadpurging:",
    "      enabled: false",
    "http:",
    `  addr: ${addr}`,
    `  secret: ${randomBytes(16).toString("hex")}`,
    auth,
    "",
  ].join("\n");
}

/** Any HTTP status from `GET url` (1 s timeout), or an error. */
export function probeHttp(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "GET", timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("probe timeout")));
    req.on("error", reject);
    req.end();
  });
}

/** One request the registry logged, as the stats count it. */
export interface LoggedRequest {
  method: string;
  /** Request URI, query included. */
  path: string;
  status: number;
  /** Response body bytes the registry wrote. */
  bytes: number;
}

/**
 * Read one line of the registry's JSON log: a request it answered ("response
 * completed"), or refused for auth ("error authorizing context", a 401 of
 * unknown size); a request carrying `shoal-flush=ID` comes back as `flush`
 * (the harness's marker that the log has caught up). Anything else, and
 * lines that are not JSON, give undefined.
 */
export function parseRegistryLogLine(line: string): { request: LoggedRequest } | { flush: string } | undefined {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const msg = String(rec["msg"] ?? "");
  const refused = msg.startsWith("error authorizing context");
  if (!msg.startsWith("response completed") && !refused) return undefined;
  const path = String(rec["http.request.uri"] ?? "");
  const flush = /[?&]shoal-flush=([\w-]+)/.exec(path);
  if (flush) return { flush: flush[1]! };
  return {
    request: {
      method: String(rec["http.request.method"] ?? ""),
      path,
      status: refused ? 401 : Number(rec["http.response.status"] ?? 0),
      bytes: refused ? 0 : Number(rec["http.response.written"] ?? 0),
    },
  };
}

const BLOB_GET = /^\/v2\/.+\/blobs\/[a-z0-9]+:[a-f0-9]+(?:\?.*)?$/;

/** Blob bytes and requests (`GET /v2/<repo>/blobs/<digest>`) among `requests`, and a copy of them all. */
export function blobStats(requests: readonly LoggedRequest[]): { blobBytes: number; blobRequests: number; requests: LoggedRequest[] } {
  const blobs = requests.filter((r) => r.method === "GET" && BLOB_GET.test(r.path));
  return { blobBytes: blobs.reduce((n, r) => n + r.bytes, 0), blobRequests: blobs.length, requests: [...requests] };
}

/**
 * A docker-registry's JSON log on its stderr, read line by line: the requests
 * it answered (for stats), the tail of other lines (for startup errors), and
 * flush marks, so that `settle` can wait until the log has caught up.
 */
export class RegistryLog {
  requests: LoggedRequest[] = [];
  tail: string[] = [];
  readonly #waiters = new Map<string, () => void>();
  #counter = 0;
  #lastLineAt = 0;

  /** Read `child`'s stderr (a pipe) from now on. */
  attach(child: ChildProcess): void {
    createInterface({ input: child.stderr! }).on("line", (line) => this.#line(line));
  }

  #line(line: string): void {
    this.#lastLineAt = Date.now();
    const parsed = parseRegistryLogLine(line);
    if (!parsed) {
      this.tail = [...this.tail.slice(-40), line];
      return;
    }
    if ("flush" in parsed) this.#waiters.get(parsed.flush)?.();
    else this.requests.push(parsed.request);
  }

  /**
   * Wait until the registry at `url` has logged every request made before
   * now: a marked request, then its log line (at most 5 s); with `quiet`,
   * also until no line arrived for 30 ms (at most 1 s more).
   */
  async settle(url: string, opts: { quiet?: boolean } = {}): Promise<void> {
    const id = `${process.pid}-${++this.#counter}`;
    const logged = new Promise<void>((resolve) => this.#waiters.set(id, resolve));
    try {
      await probeHttp(`${url}/v2/?shoal-flush=${id}`);
      await Promise.race([logged, new Promise((r) => setTimeout(r, 5000))]);
    } finally {
      this.#waiters.delete(id);
    }
    if (!opts.quiet) return;
    const until = Date.now() + 1000;
    while (Date.now() - this.#lastLineAt < 30 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Resolve once the registry `child` at `url` answers `GET /v2/` (any
   * status), polling for up to 20 s; reject if it exits first (with the
   * tail of its log) or `signal` aborts.
   */
  async waitReady(child: ChildProcess, url: string, signal?: AbortSignal): Promise<void> {
    const exited = new Promise<never>((_, reject) => {
      child.once("error", reject);
      child.once("exit", (code, sig) => reject(new Error(`docker-registry exited (${code ?? sig}) during startup:\n${this.tail.join("\n")}`)));
    });
    exited.catch(() => {});
    const deadline = Date.now() + 20_000;
    for (;;) {
      signal?.throwIfAborted();
      try {
        await Promise.race([probeHttp(`${url}/v2/?shoal-flush=startup`), exited]);
        return;
      } catch (err) {
        if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

