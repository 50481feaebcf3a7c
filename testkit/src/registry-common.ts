import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";

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
