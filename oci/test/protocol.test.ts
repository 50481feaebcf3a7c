/** RegistryClient protocol details against scripted servers on 127.0.0.1. */
import { DigestMismatchError } from "@shoal/base";
import { createHash } from "node:crypto";
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { MEDIA_TYPE_OCI_MANIFEST, RegistryClient, RegistryError, staticCredentials } from "../src/index.ts";
import { captureLogger, caught, fakeServer, type FakeServer } from "./helpers.ts";

const sha = (b: Uint8Array): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;
const PASSWORD = "s3cret-Pa55word";
const TOKEN = "tok-ABCDEF-0123456789";

let servers: FakeServer[] = [];
let clients: RegistryClient[] = [];
afterEach(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
  clients = [];
});

async function serve(handler: Parameters<typeof fakeServer>[0]): Promise<FakeServer> {
  const s = await fakeServer(handler);
  servers.push(s);
  return s;
}

function client(host: string, components: ConstructorParameters<typeof RegistryClient>[0] = {}, init: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient {
  const c = new RegistryClient({ credentials: staticCredentials({}), ...components }, { registry: host, plainHttp: true, retryBaseDelayMs: 5, ...init });
  clients.push(c);
  return c;
}

/** Everything an error could leak through: message, stack, inspect (causes included), JSON. */
function everything(err: unknown): string {
  return `${String(err)}\n${(err as Error).stack}\n${inspect(err, { depth: 10, showHidden: true })}\n${JSON.stringify(err)}`;
}

function secrets(user: string): string[] {
  return [PASSWORD, TOKEN, Buffer.from(`${user}:${PASSWORD}`).toString("base64")];
}

describe("bearer token auth", () => {
  const manifest = new TextEncoder().encode(
    JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_MANIFEST, config: { mediaType: "x", digest: `sha256:${"1".repeat(64)}`, size: 1 }, layers: [] }),
  );

  async function setup(tokenField: "token" | "access_token" = "access_token"): Promise<{ registry: FakeServer; tokens: FakeServer }> {
    const tokens = await serve((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}`) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ [tokenField]: TOKEN, expires_in: 120 }));
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== `Bearer ${TOKEN}`) {
        const repo = /^\/v2\/(.+)\/manifests\//.exec(req.url)?.[1] ?? "";
        res.writeHead(401, { "www-authenticate": `Bearer realm="${tokens.url}/token",service="fake",scope="repository:${repo}:pull"` }).end();
        return;
      }
      res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST }).end(manifest);
    });
    return { registry, tokens };
  }

  it("fetches a token once per scope, reuses it, and refreshes it after expiry", async () => {
    const { registry, tokens } = await setup();
    let now = 1_000_000;
    const c = client(registry.host, { credentials: staticCredentials({ [registry.host]: { username: "alice", password: PASSWORD } }) }, { now: () => now });
    const got = await c.getManifest({ repository: "a/b", tag: "latest" });
    expect(got.digest).toBe(sha(manifest));
    expect(registry.requests).toHaveLength(2); // 401, then with token
    expect(tokens.requests).toHaveLength(1);
    const q = new URL(tokens.requests[0]!.url, "http://x").searchParams;
    expect(q.get("service")).toBe("fake");
    expect(q.getAll("scope")).toEqual(["repository:a/b:pull"]);

    await c.getManifest({ repository: "a/b", tag: "v2" });
    expect(registry.requests).toHaveLength(3);
    expect(tokens.requests).toHaveLength(1);

    // another repository: the realm is known, so the token is fetched before the request
    await c.getManifest({ repository: "c", tag: "latest" });
    expect(registry.requests).toHaveLength(4);
    expect(tokens.requests).toHaveLength(2);

    now += 121_000;
    await c.getManifest({ repository: "a/b", tag: "latest" });
    expect(tokens.requests).toHaveLength(3);
    expect(registry.requests).toHaveLength(5);
  });

  it("accepts `token` as well as `access_token`", async () => {
    const { registry } = await setup("token");
    const c = client(registry.host, { credentials: staticCredentials({ [registry.host]: { username: "alice", password: PASSWORD } }) });
    expect((await c.getManifest({ repository: "x", tag: "latest" })).manifest.mediaType).toBe(MEDIA_TYPE_OCI_MANIFEST);
  });

  it("fails typed, and leaks no secret into errors or logs, when the token server refuses", async () => {
    const { registry } = await setup();
    const logger = captureLogger();
    const c = client(registry.host, { logger, credentials: staticCredentials({ [registry.host]: { username: "mallory", password: PASSWORD } }) });
    const err = await caught(() => c.getManifest({ repository: "x", tag: "latest" }));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
    for (const s of secrets("mallory")) {
      expect(everything(err)).not.toContain(s);
      expect(logger.lines.join("\n")).not.toContain(s);
    }
  });

  it("logs no token on success", async () => {
    const { registry } = await setup();
    const logger = captureLogger();
    const c = client(registry.host, { logger, credentials: staticCredentials({ [registry.host]: { username: "alice", password: PASSWORD } }) });
    await c.getManifest({ repository: "x", tag: "latest" });
    expect(logger.lines.length).toBeGreaterThan(0);
    for (const s of secrets("alice")) expect(logger.lines.join("\n")).not.toContain(s);
  });
});

describe("basic auth", () => {
  it("answers a Basic challenge, keeps sending Basic, and fails typed without leaking on a wrong password", async () => {
    const good = `Basic ${Buffer.from(`bob:${PASSWORD}`).toString("base64")}`;
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== good) res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      else res.writeHead(200, { "content-length": "3" }).end();
    });
    const ok = client(registry.host, { credentials: staticCredentials({ [registry.host]: { username: "bob", password: PASSWORD } }) });
    expect(await ok.headBlob("r", `sha256:${"2".repeat(64)}`)).toEqual({ size: 3 });
    expect(await ok.headBlob("r", `sha256:${"3".repeat(64)}`)).toEqual({ size: 3 });
    expect(registry.requests).toHaveLength(3);

    const wrong = client(registry.host, { credentials: staticCredentials({ [registry.host]: { username: "bob", password: `${PASSWORD}x` } }) });
    const err = await caught(() => wrong.getBlob("r", `sha256:${"2".repeat(64)}`));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
    expect(everything(err)).not.toContain(PASSWORD);
    expect(everything(err)).not.toContain(Buffer.from(`bob:${PASSWORD}x`).toString("base64"));

    const anonymous = client(registry.host);
    expect((await caught(() => anonymous.headBlob("r", `sha256:${"2".repeat(64)}`))).code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
  });
});

describe("redirects", () => {
  it("follows a blob redirect to another origin without sending Authorization there, and keeps Range", async () => {
    const blob = Buffer.from("0123456789abcdef");
    const digest = sha(blob);
    const storage = await serve((req, res) => {
      if (!req.url.includes("sig=SIGNED-SECRET")) {
        res.writeHead(403).end();
        return;
      }
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
      if (range) {
        const [s, e] = [Number(range[1]), Number(range[2])];
        res.writeHead(206, { "content-range": `bytes ${s}-${e}/${blob.length}` }).end(blob.subarray(s, e + 1));
      } else {
        res.writeHead(200, { "content-length": String(blob.length) }).end(blob);
      }
    });
    const basic = `Basic ${Buffer.from(`u:${PASSWORD}`).toString("base64")}`;
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== basic) res.writeHead(401, { "www-authenticate": 'Basic realm="r"' }).end();
      else res.writeHead(307, { location: `${storage.url}/bucket/${digest}?sig=SIGNED-SECRET` }).end();
    });
    const c = client(registry.host, { credentials: staticCredentials({ [registry.host]: { username: "u", password: PASSWORD } }) });
    expect(Buffer.from(await c.getBlob("r", digest))).toEqual(blob);
    expect(Buffer.from(await c.getBlobRange("r", digest, 3, 4))).toEqual(blob.subarray(3, 7));
    const opened = await c.openBlob("r", digest);
    const parts: Buffer[] = [];
    for await (const chunk of opened.body) parts.push(Buffer.from(chunk));
    expect(Buffer.concat(parts)).toEqual(blob);
    expect(storage.requests.length).toBe(3);
    for (const r of storage.requests) expect(r.headers.authorization).toBeUndefined();
    expect(storage.requests[1]!.headers.range).toBe("bytes=3-6");
  });

  it("keeps signed query strings out of error messages", async () => {
    const storage = await serve((_req, res) => {
      res.writeHead(403).end();
    });
    const registry = await serve((_req, res) => {
      res.writeHead(302, { location: `${storage.url}/b?X-Amz-Signature=SIGNED-SECRET` }).end();
    });
    const err = await caught(() => client(registry.host).getBlob("r", `sha256:${"4".repeat(64)}`));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_DENIED");
    expect(everything(err)).not.toContain("SIGNED-SECRET");
  });

  it("stops after too many redirects", async () => {
    const registry = await serve((req, res) => {
      res.writeHead(302, { location: `${req.url}x` }).end();
    });
    expect((await caught(() => client(registry.host).getBlob("r", `sha256:${"4".repeat(64)}`))).code).toBe("SHOAL_ERR_REGISTRY_PROTOCOL");
  });
});

describe("ranges and limits", () => {
  const digest = `sha256:${"5".repeat(64)}`;

  it("aborts a 200 answer to a range request without reading the body", async () => {
    const total = 64 * 1024 * 1024;
    let written = 0;
    let finished = false;
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "content-length": String(total) });
      const chunk = Buffer.alloc(64 * 1024);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once("drain", pump);
            return;
          }
        }
        finished = true;
        res.end();
      };
      res.on("close", () => res.removeAllListeners("drain"));
      pump();
    });
    const c = client(registry.host);
    const err = await caught(() => c.getBlobRange("r", digest, 100, 10));
    expect(err.code).toBe("SHOAL_ERR_RANGE_NOT_SUPPORTED");
    await new Promise((r) => setTimeout(r, 100));
    expect(finished).toBe(false);
    expect(written).toBeLessThan(total / 2);
    expect((await caught(() => c.getBlobTail("r", digest, 10))).code).toBe("SHOAL_ERR_RANGE_NOT_SUPPORTED");
  });

  it("checks Content-Range and sends the right Range headers", async () => {
    const registry = await serve((req, res) => {
      if (req.url.includes("wrong")) res.writeHead(206, { "content-range": "bytes 0-9/100" }).end(Buffer.alloc(10));
      else if (req.headers.range === "bytes=-10") res.writeHead(206, { "content-range": "bytes 90-99/100" }).end(Buffer.alloc(10, 1));
      else if (req.headers.range === "bytes=-1000") res.writeHead(206, { "content-range": "bytes 0-99/100" }).end(Buffer.alloc(100, 2));
      else if (req.headers.range === "bytes=95-104") res.writeHead(206, { "content-range": "bytes 95-99/100" }).end(Buffer.alloc(5));
      else res.writeHead(500).end();
    });
    const c = client(registry.host, {}, { maxAttempts: 1 });
    const tail = await c.getBlobTail("r", digest, 10);
    expect(tail.totalSize).toBe(100);
    expect(Buffer.from(tail.bytes)).toEqual(Buffer.alloc(10, 1));
    const whole = await c.getBlobTail("r", digest, 1000);
    expect(whole.bytes.length).toBe(100);
    expect((await caught(() => c.getBlobRange("r", digest, 95, 10))).code).toBe("SHOAL_ERR_RANGE_NOT_SATISFIABLE");
    expect((await caught(() => c.getBlobRange("wrong", digest, 5, 10))).code).toBe("SHOAL_ERR_REGISTRY_PROTOCOL");
    expect((await caught(() => c.getBlobRange("r", digest, 0, 0))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
    expect((await caught(() => c.getBlobRange("r", digest, -1, 5))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
    expect((await caught(() => c.getBlobTail("r", digest, 0))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
  });

  it("stops reading a manifest past 4 MiB, with or without Content-Length", async () => {
    let closedEarly = false;
    const registry = await serve((req, res) => {
      const big = Buffer.alloc(1024 * 1024, 0x20);
      if (req.url.includes("declared")) {
        res.writeHead(200, { "content-length": String(6 * 1024 * 1024) }).end();
        return;
      }
      res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST }); // chunked, no length
      let sent = 0;
      res.on("close", () => {
        closedEarly = sent < 64;
      });
      const pump = (): void => {
        while (sent < 64) {
          sent++;
          if (!res.write(big)) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const c = client(registry.host);
    expect((await caught(() => c.getManifest({ repository: "r", tag: "streamed" }))).code).toBe("SHOAL_ERR_MANIFEST_TOO_LARGE");
    expect((await caught(() => c.getManifest({ repository: "declared", tag: "x" }))).code).toBe("SHOAL_ERR_MANIFEST_TOO_LARGE");
    await new Promise((r) => setTimeout(r, 100));
    expect(closedEarly).toBe(true);
  });

  it("getBlob enforces maxSize", async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200).end(Buffer.alloc(2000));
    });
    expect((await caught(() => client(registry.host).getBlob("r", digest, { maxSize: 1000 }))).code).toBe("SHOAL_ERR_BLOB_TOO_LARGE");
  });
});

describe("verification", () => {
  it("openBlob withholds the last chunk and throws DigestMismatchError from the iterator", async () => {
    const real = Buffer.alloc(300_000, 1);
    const served = Buffer.from(real);
    served[served.length - 1] = 2;
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "content-length": String(served.length) }).end(served);
    });
    const opened = await client(registry.host).openBlob("r", sha(real));
    expect(opened.size).toBe(real.length);
    let received = 0;
    const err = await caught(async () => {
      for await (const chunk of opened.body) received += chunk.length;
    });
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(received).toBeLessThan(real.length);
  });

  it("openBlob rejects a short body", async () => {
    const registry = await serve((_req, res, raw) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write(Buffer.alloc(10), () => raw.socket.destroy());
    });
    const opened = await client(registry.host).openBlob("r", `sha256:${"6".repeat(64)}`);
    const err = await caught(async () => {
      for await (const _ of opened.body) {
        // drain
      }
    });
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
    expect(err.message).toContain("of 1000 bytes");
    expect(registry.requests).toHaveLength(1); // a stream handed out is never retried behind the caller's back
  });

  it("getManifest by digest rejects bytes that do not match", async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST }).end('{"schemaVersion":2,"config":{},"layers":[]}');
    });
    const err = await caught(() => client(registry.host).getManifest({ repository: "r", digest: `sha256:${"7".repeat(64)}` }));
    expect(err).toBeInstanceOf(DigestMismatchError);
  });

  it("getManifest rejects a Docker-Content-Digest that disagrees with the bytes", async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "content-type": MEDIA_TYPE_OCI_MANIFEST, "docker-content-digest": `sha256:${"8".repeat(64)}` }).end("{}");
    });
    expect(await caught(() => client(registry.host).getManifest({ repository: "r", tag: "t" }))).toBeInstanceOf(DigestMismatchError);
  });

  it("refuses a reference for another registry", async () => {
    const c = client("127.0.0.1:1");
    expect((await caught(() => c.getManifest({ registry: "docker.io", repository: "library/x", tag: "t" }))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
  });
});

describe("uploads", () => {
  it("follows relative and absolute Locations and appends the digest to opaque upload state", async () => {
    const data = Buffer.from("x".repeat(2500));
    const digest = sha(data);
    let host = "";
    const seen: string[] = [];
    const registry = await serve((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers["content-range"] ?? ""} ${req.body.length}`);
      if (req.method === "HEAD") res.writeHead(404).end();
      else if (req.method === "POST") res.writeHead(202, { location: "/upload/u1?_state=a%2Bb%3D" }).end();
      else if (req.method === "PATCH") {
        const end = Number(/-(\d+)$/.exec(String(req.headers["content-range"]))![1]);
        res.writeHead(202, { location: `http://${host}/upload/u${end}?_state=s${end}`, range: `0-${end}` }).end();
      } else if (req.method === "PUT") res.writeHead(201, { "docker-content-digest": digest }).end();
      else res.writeHead(500).end();
    });
    host = registry.host;
    const c = client(registry.host, {}, { chunkedUploadThreshold: 1000 });
    expect(await c.pushBlob("a/b", digest, data.length, data, { chunkSize: 1000 })).toEqual({ outcome: "uploaded" });
    expect(seen).toEqual([
      `HEAD /v2/a/b/blobs/${digest}  0`,
      "POST /v2/a/b/blobs/uploads/  0",
      "PATCH /upload/u1?_state=a%2Bb%3D 0-999 1000",
      "PATCH /upload/u999?_state=s999 1000-1999 1000",
      "PATCH /upload/u1999?_state=s1999 2000-2499 500",
      `PUT /upload/u2499?_state=s2499&digest=${encodeURIComponent(digest)}  0`,
    ]);
  });

  it("restarts a failed upload from a new session", async () => {
    const data = Buffer.from("hello world");
    const digest = sha(data);
    let puts = 0;
    const registry = await serve((req, res, raw) => {
      if (req.method === "HEAD") res.writeHead(404).end();
      else if (req.method === "POST") res.writeHead(202, { location: `/upload/${Math.random()}` }).end();
      else if (req.method === "PUT" && ++puts === 1) raw.socket.destroy();
      else if (req.method === "PUT") res.writeHead(201).end();
      else if (req.method === "DELETE") res.writeHead(204).end();
      else res.writeHead(500).end();
    });
    expect(await client(registry.host).pushBlob("r", digest, data.length, data)).toEqual({ outcome: "uploaded" });
    expect(registry.requests.filter((r) => r.method === "POST")).toHaveLength(2);
    expect(registry.requests.filter((r) => r.method === "PUT").at(-1)!.body).toEqual(data);
  });

  it("checks its arguments", async () => {
    const c = client("127.0.0.1:1");
    const d = `sha256:${"9".repeat(64)}`;
    expect((await caught(() => c.pushBlob("r", d, 5, new Uint8Array(4)))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
    expect((await caught(() => c.pushBlob("r", "sha256:nope", 4, new Uint8Array(4)))).code).toBe("SHOAL_ERR_INVALID_ARGUMENT");
    expect((await caught(() => c.pushBlob("R", d, 4, new Uint8Array(4)))).code).toBe("SHOAL_ERR_INVALID_REFERENCE");
    expect((await caught(() => c.putManifest("r", `sha256:${"1".repeat(64)}`, new Uint8Array(4), MEDIA_TYPE_OCI_MANIFEST))).code).toBe("SHOAL_ERR_DIGEST_MISMATCH");
  });
});
