import { afterEach, describe, expect, it } from "vitest";
import { backoffDelay, isRetryableStatus, parseRetryAfter, RegistryClient, RegistryError } from "../src/index.ts";
import { RetryBudget } from "../src/retry.ts";
import { caught, fakeServer, type FakeServer } from "./helpers.ts";

const DIGEST = `sha256:${"0".repeat(64)}`;

describe("backoff", () => {
  it("doubles from the base delay up to the cap, with jitter in [0.5, 1)", () => {
    expect(backoffDelay(1, 100, 5000, () => 0.999999)).toBe(100);
    expect(backoffDelay(1, 100, 5000, () => 0)).toBe(50);
    expect(backoffDelay(3, 100, 5000, () => 0.999999)).toBe(400);
    expect(backoffDelay(20, 100, 5000, () => 0.999999)).toBe(5000);
    for (let i = 0; i < 100; i++) {
      const v = backoffDelay(2, 100, 5000);
      expect(v).toBeGreaterThanOrEqual(100);
      expect(v).toBeLessThanOrEqual(200);
    }
  });

  it("bounds attempts and total time", () => {
    let now = 0;
    const budget = new RetryBudget({ maxAttempts: 3, maxRetryTimeMs: 1000, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999, now: () => now });
    budget.begin();
    expect(budget.nextDelay()).toBe(100);
    budget.begin();
    expect(budget.nextDelay()).toBe(200);
    budget.begin();
    expect(budget.nextDelay()).toBeUndefined(); // attempts spent
    const timed = new RetryBudget({ maxAttempts: 100, maxRetryTimeMs: 1000, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999, now: () => now });
    timed.begin();
    now = 950;
    expect(timed.nextDelay()).toBeUndefined(); // 950 + 100 > 1000
    expect(timed.nextDelay(10)).toBe(10); // a short Retry-After still fits
  });

  it("parses Retry-After seconds and dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter(new Date(1_000).toUTCString(), 4_000)).toBe(0);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it("classifies statuses", () => {
    for (const s of [408, 429, 500, 502, 503, 504]) expect(isRetryableStatus(s)).toBe(true);
    for (const s of [200, 400, 401, 403, 404, 416, 501, 505]) expect(isRetryableStatus(s)).toBe(false);
  });
});

describe("retries against a scripted server", () => {
  let server: FakeServer | undefined;
  let client: RegistryClient | undefined;
  afterEach(async () => {
    await client?.close();
    await server?.close();
    client = undefined;
    server = undefined;
  });

  const make = (srv: FakeServer, init: ConstructorParameters<typeof RegistryClient>[1] = {}): RegistryClient =>
    new RegistryClient({}, { registry: srv.host, plainHttp: true, retryBaseDelayMs: 10, retryMaxDelayMs: 50, ...init });

  it("retries 503 and 500, then succeeds", async () => {
    let n = 0;
    server = await fakeServer((_req, res) => {
      n++;
      if (n === 1) res.writeHead(503).end("busy");
      else if (n === 2) res.writeHead(500, { "content-type": "application/json" }).end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
      else res.writeHead(200, { "content-length": "5" }).end("hello");
    });
    client = make(server);
    expect(await client.headBlob("a/b", DIGEST)).toEqual({ size: 5 });
    expect(server.requests).toHaveLength(3);
  });

  it("honours Retry-After on 429", async () => {
    const times: number[] = [];
    server = await fakeServer((_req, res) => {
      times.push(Date.now());
      if (times.length === 1) res.writeHead(429, { "retry-after": "1" }).end();
      else res.writeHead(200, { "content-length": "1" }).end("x");
    });
    client = make(server);
    expect(await client.headBlob("a", DIGEST)).toEqual({ size: 1 });
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
  });

  it("gives up after maxAttempts with a typed unavailable error", async () => {
    server = await fakeServer((_req, res) => {
      res.writeHead(502, { "content-type": "application/json" }).end('{"errors":[{"code":"UNAVAILABLE","message":"upstream down"}]}');
    });
    client = make(server, { maxAttempts: 4 });
    const err = await caught(() => client!.getBlob("a", DIGEST));
    expect(err).toBeInstanceOf(RegistryError);
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
    expect((err as RegistryError).attempts).toBe(4);
    expect((err as RegistryError).status).toBe(502);
    expect(err.message).toContain("upstream down");
    expect(server.requests).toHaveLength(4);
  });

  it("stops when the time budget is spent even with attempts left", async () => {
    server = await fakeServer((_req, res) => {
      res.writeHead(503).end();
    });
    client = make(server, { maxAttempts: 1000, maxRetryTimeMs: 300, retryBaseDelayMs: 40, retryMaxDelayMs: 40 });
    const t0 = Date.now();
    const err = await caught(() => client!.headBlob("a", DIGEST));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(server.requests.length).toBeGreaterThan(2);
    expect(server.requests.length).toBeLessThan(20);
  });

  it("gives up at once when Retry-After exceeds the budget", async () => {
    server = await fakeServer((_req, res) => {
      res.writeHead(429, { "retry-after": "3600" }).end();
    });
    client = make(server);
    const t0 = Date.now();
    const err = await caught(() => client!.headBlob("a", DIGEST));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(server.requests).toHaveLength(1);
  });

  it("retries connection resets, including one in the middle of a body it buffers", async () => {
    let n = 0;
    const payload = Buffer.alloc(100_000, 7);
    const { createHash } = await import("node:crypto");
    const digest = `sha256:${createHash("sha256").update(payload).digest("hex")}`;
    server = await fakeServer((_req, res, raw) => {
      n++;
      if (n === 1) {
        raw.socket.destroy();
        return;
      }
      if (n === 2) {
        res.writeHead(200, { "content-length": String(payload.length) });
        res.write(payload.subarray(0, 1000), () => raw.socket.destroy());
        return;
      }
      res.writeHead(200, { "content-length": String(payload.length) }).end(payload);
    });
    client = make(server);
    expect(Buffer.from(await client.getBlob("a", digest))).toEqual(payload);
    expect(n).toBe(3);
  });

  it("does not retry 4xx", async () => {
    server = await fakeServer((_req, res) => {
      res.writeHead(400, { "content-type": "application/json" }).end('{"errors":[{"code":"NAME_INVALID","message":"bad name"}]}');
    });
    client = make(server);
    const err = await caught(() => client!.getBlob("a", DIGEST));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_REJECTED");
    expect((err as RegistryError).details).toEqual([{ code: "NAME_INVALID", message: "bad name" }]);
    expect(server.requests).toHaveLength(1);
  });

  it("aborts a backoff wait when the signal fires", async () => {
    server = await fakeServer((_req, res) => {
      res.writeHead(503).end();
    });
    client = make(server, { retryBaseDelayMs: 10_000, retryMaxDelayMs: 10_000, maxRetryTimeMs: 60_000 });
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error("cancelled by test")), 100);
    const err = await caught(() => client!.headBlob("a", DIGEST, { signal: ac.signal }));
    expect(err.message).toBe("cancelled by test");
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("aborts an in-flight request when the signal fires", async () => {
    server = await fakeServer(() => {
      // never answers
    });
    client = make(server);
    const ac = new AbortController();
    const t0 = Date.now();
    setTimeout(() => ac.abort(new Error("gave up waiting")), 100);
    const err = await caught(() => client!.getManifest({ repository: "a", tag: "t" }, { signal: ac.signal }));
    expect(err.message).toBe("gave up waiting");
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(server.requests).toHaveLength(1);
  });

  it("reports an unreachable registry as unavailable within the budget", async () => {
    const srv = await fakeServer(() => {});
    const host = srv.host;
    await srv.close();
    client = new RegistryClient({}, { registry: host, plainHttp: true, maxAttempts: 3, retryBaseDelayMs: 10 });
    const err = await caught(() => client!.headBlob("a", DIGEST));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
    expect(err.message).toContain("ECONNREFUSED");
    expect((err as RegistryError).attempts).toBe(3);
  });
});
