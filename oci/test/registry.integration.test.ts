/** RegistryClient against the real Distribution registry (docker-registry), started on 127.0.0.1. */
import { DigestMismatchError } from "@shoal/base";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect, promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type RunningRegistry } from "@shoal/testkit";
import {
  isIndex,
  MEDIA_TYPE_DOCKER_MANIFEST,
  NoMatchingPlatformError,
  parseReference,
  RegistryClient,
  RegistryError,
  staticCredentials,
  type RegistryClientComponents,
  type RegistryClientInit,
} from "../src/index.ts";
import { captureLogger, caught } from "./helpers.ts";
import { blobOf, pushImage, pushIndex, randomBlob } from "./image.ts";

const run = promisify(execFile);

describe("RegistryClient against docker-registry", () => {
  let reg: RunningRegistry;
  let client: RegistryClient;
  let tmp: string;
  const clients: RegistryClient[] = [];

  const make = (components: RegistryClientComponents = {}, init: RegistryClientInit = {}, r: RunningRegistry = reg): RegistryClient => {
    const c = new RegistryClient({ credentials: staticCredentials({}), ...components }, { registry: r.host, plainHttp: true, retryBaseDelayMs: 20, ...init });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    reg = await startRegistry();
    tmp = await mkdtemp(join(tmpdir(), "shoal-oci-it-"));
    client = make();
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("pushes a blob monolithically, HEADs it, skips it when present, and reads it back verified", async () => {
    const b = randomBlob(200_000);
    expect(await client.headBlob("mono/repo", b.digest)).toBeUndefined();
    await reg.resetStats();
    expect(await client.pushBlob("mono/repo", b.digest, b.size, b.bytes)).toEqual({ outcome: "uploaded" });
    await reg.settle();
    const methods = reg.stats().requests.map((r) => `${r.method} ${r.status}`);
    expect(methods).toEqual(["HEAD 404", "POST 202", "PUT 201"]);
    expect(await client.headBlob("mono/repo", b.digest)).toEqual({ size: b.size });
    expect(await client.pushBlob("mono/repo", b.digest, b.size, b.bytes)).toEqual({ outcome: "existed" });
    await reg.resetStats();
    expect(Buffer.from(await client.getBlob("mono/repo", b.digest))).toEqual(Buffer.from(b.bytes));
    await reg.settle();
    expect(reg.stats().blobBytes).toBe(b.size);
    expect(reg.stats().blobRequests).toBe(1);
  });

  it("pushes a file in chunks (PATCH with Content-Range, PUT ?digest=) and streams it back", async () => {
    const b = randomBlob(1_300_000);
    const path = join(tmp, "chunked.bin");
    await writeFile(path, b.bytes);
    const chunky = make({}, { chunkedUploadThreshold: 1024 * 1024 });
    await reg.resetStats();
    expect(await chunky.pushBlob("chunked", b.digest, b.size, { path }, { chunkSize: 256 * 1024 })).toEqual({ outcome: "uploaded" });
    await reg.settle();
    const reqs = reg.stats().requests;
    expect(reqs.filter((r) => r.method === "PATCH" && r.status === 202)).toHaveLength(Math.ceil(b.size / (256 * 1024)));
    const put = reqs.find((r) => r.method === "PUT");
    expect(put?.status).toBe(201);
    expect(put?.path).toContain(`digest=${encodeURIComponent(b.digest)}`);

    // a file at or under the threshold goes up in one PUT
    const small = randomBlob(300_000);
    const smallPath = join(tmp, "small.bin");
    await writeFile(smallPath, small.bytes);
    await reg.resetStats();
    expect(await chunky.pushBlob("chunked", small.digest, small.size, { path: smallPath })).toEqual({ outcome: "uploaded" });
    await reg.settle();
    expect(reg.stats().requests.map((r) => `${r.method} ${r.status}`)).toEqual(["HEAD 404", "POST 202", "PUT 201"]);
    expect(Buffer.from(await client.getBlob("chunked", small.digest))).toEqual(Buffer.from(small.bytes));

    const opened = await client.openBlob("chunked", b.digest);
    expect(opened.size).toBe(b.size);
    const parts: Buffer[] = [];
    for await (const chunk of opened.body) parts.push(Buffer.from(chunk));
    expect(Buffer.concat(parts)).toEqual(Buffer.from(b.bytes));
  });

  it("reads ranges and tails, fetching only those bytes", async () => {
    const b = randomBlob(100_000);
    await client.pushBlob("ranges", b.digest, b.size, b.bytes);
    await reg.resetStats();
    const cases: [number, number][] = [[0, 1], [0, 100_000], [12_345, 6_789], [99_999, 1], [50_000, 50_000]];
    for (const [off, len] of cases) {
      expect(Buffer.from(await client.getBlobRange("ranges", b.digest, off, len))).toEqual(Buffer.from(b.bytes.subarray(off, off + len)));
    }
    const tail = await client.getBlobTail("ranges", b.digest, 4096);
    expect(tail.totalSize).toBe(b.size);
    expect(Buffer.from(tail.bytes)).toEqual(Buffer.from(b.bytes.subarray(b.size - 4096)));
    const all = await client.getBlobTail("ranges", b.digest, 1_000_000);
    expect(all.totalSize).toBe(b.size);
    expect(Buffer.from(all.bytes)).toEqual(Buffer.from(b.bytes));
    await reg.settle();
    const st = reg.stats();
    expect(st.blobRequests).toBe(cases.length + 2);
    expect(st.blobBytes).toBe(cases.reduce((n, [, l]) => n + l, 0) + 4096 + b.size);
    expect(st.requests.every((r) => r.status === 206)).toBe(true);

    expect((await caught(() => client.getBlobRange("ranges", b.digest, 99_990, 20))).code).toBe("SHOAL_ERR_RANGE_NOT_SATISFIABLE");
    expect((await caught(() => client.getBlobRange("ranges", b.digest, 100_000, 1))).code).toBe("SHOAL_ERR_RANGE_NOT_SATISFIABLE");
  });

  it("reports unknown blobs and manifests as not found", async () => {
    const missing = randomBlob(10);
    await client.pushBlob("known", missing.digest, missing.size, missing.bytes);
    const other = randomBlob(10);
    expect(await client.headBlob("known", other.digest)).toBeUndefined();
    const e1 = await caught(() => client.getBlob("known", other.digest));
    expect(e1.code).toBe("SHOAL_ERR_REGISTRY_NOT_FOUND");
    expect((e1 as RegistryError).details[0]?.code).toBe("BLOB_UNKNOWN");
    const e2 = await caught(() => client.getManifest({ repository: "known", tag: "nope" }));
    expect(e2.code).toBe("SHOAL_ERR_REGISTRY_NOT_FOUND");
    expect((e2 as RegistryError).details[0]?.code).toBe("MANIFEST_UNKNOWN");
  });

  it("detects a blob corrupted in storage", async () => {
    const b = randomBlob(50_000);
    await client.pushBlob("corrupt", b.digest, b.size, b.bytes);
    const hex = b.digest.slice("sha256:".length);
    const dataPath = join(reg.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex, "data");
    const stored = await readFile(dataPath);
    stored[25_000] = stored[25_000]! ^ 0xff;
    await writeFile(dataPath, stored);

    expect(await caught(() => client.getBlob("corrupt", b.digest))).toBeInstanceOf(DigestMismatchError);
    const opened = await client.openBlob("corrupt", b.digest);
    let got = 0;
    const err = await caught(async () => {
      for await (const chunk of opened.body) got += chunk.length;
    });
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(got).toBeLessThan(b.size);
    // ranges are served as stored; verification is the chunk index's job
    expect((await client.getBlobRange("corrupt", b.digest, 25_000, 1))[0]).toBe(b.bytes[25_000]! ^ 0xff);
  });

  it("mounts a blob from another repository, and falls back to uploading when the source lacks it", async () => {
    const b = randomBlob(30_000);
    await client.pushBlob("mount/src", b.digest, b.size, b.bytes);
    await reg.resetStats();
    expect(await client.pushBlob("mount/dst", b.digest, b.size, b.bytes, { mountFrom: "mount/src" })).toEqual({ outcome: "mounted" });
    await reg.settle();
    expect(reg.stats().requests.map((r) => `${r.method} ${r.status}`)).toEqual(["HEAD 404", "POST 201"]);
    expect(reg.stats().requests[1]!.path).toContain(`mount=${encodeURIComponent(b.digest)}&from=mount%2Fsrc`);
    expect(await client.headBlob("mount/dst", b.digest)).toEqual({ size: b.size });

    const c = randomBlob(1000);
    expect(await client.pushBlob("mount/dst", c.digest, c.size, c.bytes, { mountFrom: "mount/empty" })).toEqual({ outcome: "uploaded" });
    expect(Buffer.from(await client.getBlob("mount/dst", c.digest))).toEqual(Buffer.from(c.bytes));
  });

  it("mounts without uploading: true when mounted, false (session cancelled) when the source lacks the blob", async () => {
    const b = randomBlob(20_000);
    await client.pushBlob("mountonly/src", b.digest, b.size, b.bytes);
    expect(await client.mountBlob("mountonly/dst", b.digest, "mountonly/src")).toBe(true);
    expect(await client.headBlob("mountonly/dst", b.digest)).toEqual({ size: b.size });
    const c = randomBlob(1000);
    await reg.settle();
    await reg.resetStats();
    expect(await client.mountBlob("mountonly/dst", c.digest, "mountonly/empty")).toBe(false);
    await reg.settle();
    expect(reg.stats().requests.map((r) => `${r.method} ${r.status}`)).toEqual(["POST 202", "DELETE 204"]);
    expect(await client.headBlob("mountonly/dst", c.digest)).toBeUndefined();
  });

  it("puts and gets manifests by tag and by digest", async () => {
    const img = await pushImage(client, "app", { os: "linux", architecture: "amd64" }, { tag: "v1" });
    const byTag = await client.getManifest(parseReference(`${reg.host}/app:v1`));
    expect(byTag.digest).toBe(img.digest);
    expect(Buffer.from(byTag.bytes)).toEqual(Buffer.from(img.bytes));
    expect(isIndex(byTag.manifest)).toBe(false);
    const byDigest = await client.getManifest(parseReference(`${reg.host}/app@${img.digest}`));
    expect(byDigest.digest).toBe(img.digest);
    expect(byDigest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    const resolved = await client.resolveImage(parseReference(`${reg.host}/app:v1`));
    expect(resolved.digest).toBe(img.digest);
    expect(resolved.index).toBeUndefined();
    const config = await client.getBlob("app", img.config.digest, { maxSize: 4096 });
    expect(JSON.parse(Buffer.from(config).toString())).toMatchObject({ architecture: "amd64" });

    const docker = await pushImage(client, "app", { os: "linux", architecture: "amd64" }, { tag: "docker", mediaType: MEDIA_TYPE_DOCKER_MANIFEST });
    const got = await client.getManifest({ repository: "app", tag: "docker" });
    expect(got.mediaType).toBe(MEDIA_TYPE_DOCKER_MANIFEST);
    expect(got.digest).toBe(docker.digest);

    // skopeo (containers/image) reads what we pushed
    const { stdout } = await run("skopeo", ["inspect", "--raw", "--tls-verify=false", `docker://${reg.host}/app:v1`]);
    expect(blobOf(Buffer.from(stdout)).digest).toBe(img.digest);
    const layout = join(tmp, "layout");
    await run("skopeo", ["copy", "--quiet", "--src-tls-verify=false", "--preserve-digests", `docker://${reg.host}/app:v1`, `oci:${layout}:v1`]);
    expect(await readFile(join(layout, "blobs/sha256", img.layers[1]!.digest.slice(7)))).toEqual(Buffer.from(img.layers[1]!.bytes));
  });

  it("resolves an index with two platforms", async () => {
    const amd64 = await pushImage(client, "multi", { os: "linux", architecture: "amd64" });
    const arm64 = await pushImage(client, "multi", { os: "linux", architecture: "arm64", variant: "v8" });
    const index = await pushIndex(client, "multi", "latest", [amd64, arm64]);

    const onArm = await client.resolveImage({ repository: "multi", tag: "latest" }, { platform: { os: "linux", architecture: "arm64" } });
    expect(onArm.digest).toBe(arm64.digest);
    expect(onArm.index?.digest).toBe(index.digest);
    expect(onArm.manifest.layers.map((l) => l.digest)).toEqual(arm64.layers.map((l) => l.digest));
    const onAmd = await client.resolveImage({ repository: "multi", tag: "latest" }, { platform: { os: "linux", architecture: "amd64" } });
    expect(onAmd.digest).toBe(amd64.digest);
    if (process.arch === "x64" || process.arch === "arm64") {
      expect((await client.resolveImage({ repository: "multi", tag: "latest" })).digest).toBe(process.arch === "x64" ? amd64.digest : arm64.digest);
    }
    const err = await caught(() => client.resolveImage({ repository: "multi", digest: index.digest }, { platform: { os: "linux", architecture: "s390x" } }));
    expect(err).toBeInstanceOf(NoMatchingPlatformError);
    expect((err as NoMatchingPlatformError).available).toEqual(["linux/amd64", "linux/arm64/v8"]);
  });

  it("reports a stopped registry as unavailable within the retry budget, and recovers after restart", async () => {
    const b = randomBlob(100);
    await client.pushBlob("outage", b.digest, b.size, b.bytes);
    const impatient = make({}, { maxAttempts: 4, maxRetryTimeMs: 3000, retryBaseDelayMs: 50 });
    await reg.halt();
    try {
      expect(reg.stopped).toBe(true);
      const t0 = Date.now();
      const err = await caught(() => impatient.getBlob("outage", b.digest));
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAVAILABLE");
      expect((err as RegistryError).attempts).toBe(4);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await reg.restart();
    }
    expect(reg.stopped).toBe(false);
    expect(Buffer.from(await impatient.getBlob("outage", b.digest))).toEqual(Buffer.from(b.bytes));
  });
});

describe("RegistryClient against docker-registry with htpasswd", () => {
  const user = "shoal-user";
  const password = "correct horse battery staple";
  let reg: RunningRegistry;
  const clients: RegistryClient[] = [];
  const make = (creds: { username: string; password: string } | undefined, logger = captureLogger()): RegistryClient => {
    const c = new RegistryClient({ logger, credentials: staticCredentials(creds ? { [reg.host]: creds } : {}) }, { registry: reg.host, plainHttp: true, maxAttempts: 2, retryBaseDelayMs: 10 });
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    reg = await startRegistry({ htpasswd: { user, password } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
  });

  it("works with the right password", async () => {
    const c = make({ username: user, password });
    const img = await pushImage(c, "private/app", { os: "linux", architecture: "amd64" }, { tag: "v1" });
    expect((await c.resolveImage({ repository: "private/app", tag: "v1" })).digest).toBe(img.digest);
  });

  it("fails typed with a wrong or no password, and never shows the credentials", async () => {
    const wrongPassword = "wrong-Password-123";
    const logger = captureLogger();
    const bad = make({ username: user, password: wrongPassword }, logger);
    const b = randomBlob(10);
    for (const op of [() => bad.getManifest({ repository: "private/app", tag: "v1" }), () => bad.pushBlob("private/app", b.digest, b.size, b.bytes)]) {
      const err = await caught(op);
      expect(err).toBeInstanceOf(RegistryError);
      expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
      const text = `${String(err)} ${err.stack} ${inspect(err, { depth: 10, showHidden: true })} ${JSON.stringify(err)} ${logger.lines.join("\n")}`;
      for (const secret of [wrongPassword, Buffer.from(`${user}:${wrongPassword}`).toString("base64"), password]) expect(text).not.toContain(secret);
    }
    expect((await caught(() => make(undefined).getManifest({ repository: "private/app", tag: "v1" }))).code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
  });
});

describe("RegistryClient against docker-registry with bearer tokens", () => {
  const user = "tok-user";
  const password = "tok-Password-456";
  let reg: RunningRegistry;
  const clients: RegistryClient[] = [];
  beforeAll(async () => {
    reg = await startRegistry({ tokenAuth: { user, password, anonymousPull: true } });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await reg?.stop();
  });

  it("fetches, caches and scopes tokens; anonymous pull works, anonymous push does not", async () => {
    const logger = captureLogger();
    const c = new RegistryClient({ logger, credentials: staticCredentials({ [reg.host]: { username: user, password } }) }, { registry: reg.host, plainHttp: true });
    clients.push(c);
    const img = await pushImage(c, "tok/app", { os: "linux", architecture: "amd64" }, { tag: "v1" });
    const afterPush = reg.tokenServer!.tokenRequests;
    expect(afterPush).toBeGreaterThanOrEqual(1);
    expect(afterPush).toBeLessThanOrEqual(2); // push scope (+ pull scope for the first HEAD)
    await c.getManifest({ repository: "tok/app", tag: "v1" });
    await c.getManifest({ repository: "tok/app", tag: "v1" });
    expect(reg.tokenServer!.tokenRequests - afterPush).toBeLessThanOrEqual(1);

    const anon = new RegistryClient({ credentials: staticCredentials({}) }, { registry: reg.host, plainHttp: true, maxAttempts: 1 });
    clients.push(anon);
    expect((await anon.resolveImage({ repository: "tok/app", tag: "v1" })).digest).toBe(img.digest);
    const b = randomBlob(10);
    const err = await caught(() => anon.pushBlob("tok/app", b.digest, b.size, b.bytes));
    expect(err.code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");

    const wrong = new RegistryClient({ credentials: staticCredentials({ [reg.host]: { username: user, password: "nope-nope" } }) }, { registry: reg.host, plainHttp: true, maxAttempts: 1 });
    clients.push(wrong);
    const e2 = await caught(() => wrong.getManifest({ repository: "tok/app", tag: "v1" }));
    expect(e2.code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
    expect(inspect(e2, { depth: 10 })).not.toContain("nope-nope");
    expect(logger.lines.join("\n")).not.toContain(password);
    expect(logger.lines.join("\n")).not.toMatch(/eyJ[\w-]+\.[\w-]+\./); // no JWT
  });
});
