import { Writable } from "node:stream";
import { parseReference, RegistryClient, staticCredentials } from "@shoal/oci";
import { startRegistry, type RunningRegistry } from "@shoal/testkit";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { preheat } from "@shoal/swarm";
import { createSupernode } from "../src/index.ts";
import { blobChunks, Cleanup, prepareImage, type TestImage } from "./harness.ts";

const user = "shoal-user";
const password = "s3cret-Passw0rd-for-supernode";

describe("credentials pass through to a private registry", () => {
  const cleanup = new Cleanup();
  let open: RunningRegistry;
  let priv: RunningRegistry;
  let image: TestImage;
  let privRef: string;

  beforeAll(async () => {
    try {
      open = await startRegistry();
      cleanup.add(() => open.stop());
      priv = await startRegistry({ htpasswd: { user, password } });
      cleanup.add(() => priv.stop());
      image = await prepareImage(open, await cleanup.tempDir("shoal-sn-auth-"), "private/app", 2 * 1024 * 1024, 64 * 1024);
      // Copy the lazy image into the private registry.
      const src = new RegistryClient({}, { registry: open.host, plainHttp: true });
      const dst = new RegistryClient({ credentials: staticCredentials({ [priv.host]: { username: user, password } }) }, { registry: priv.host, plainHttp: true });
      try {
        const m = await src.resolveImage(parseReference(image.ref));
        for (const d of [m.manifest.config, ...m.manifest.layers]) {
          await dst.pushBlob("private/app", d.digest, d.size, await src.getBlob("private/app", d.digest, { maxSize: 1 << 30 }));
        }
        await dst.putManifest("private/app", "lazy", m.bytes, m.mediaType);
      } finally {
        await src.close();
        await dst.close();
      }
      privRef = `${priv.host}/private/app:lazy`;
    } catch (err) {
      await cleanup.run();
      throw err;
    }
  });
  afterAll(() => cleanup.run());

  it("uses the caller's Basic credentials, refuses without them, and never logs them", async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        lines.push(chunk.toString());
        cb();
      },
    });
    const sn = await createSupernode({ root: await cleanup.tempDir("shoal-sn-auth-root-"), listen: { host: "127.0.0.1", port: 0 }, plainHttp: true }, pino({ level: "trace" }, sink));
    cleanup.add(() => sn.close());
    const layer = image.layers[0]!;
    const url = `${sn.url}/v1/chunks/${priv.host}/private/app/${layer.digest}?first=0&last=2`;
    const basic = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    const wrong = `Basic ${Buffer.from(`${user}:nope-Wrong-pass`).toString("base64")}`;

    const anon = await fetch(url);
    expect(anon.status).toBe(401);
    expect(((await anon.json()) as { code: string }).code).toBe("SHOAL_ERR_REGISTRY_UNAUTHORIZED");
    const bad = await fetch(url, { headers: { authorization: wrong } });
    expect(bad.status).toBe(401);
    const ok = await fetch(url, { headers: { authorization: basic } });
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(blobChunks(layer, 0, 2))).toBe(true);

    // Cached now, but still not for callers the registry would refuse.
    const anonAgain = await fetch(url);
    expect(anonAgain.status).toBe(401);
    const wrongAgain = await fetch(url, { headers: { authorization: wrong } });
    expect(wrongAgain.status).toBe(401);

    // the index route is checked the same way
    const indexUrl = `${sn.url}/v1/index/${priv.host}/private/app/${layer.digest}`;
    expect((await fetch(indexUrl)).status).toBe(401);
    expect((await fetch(indexUrl, { headers: { authorization: basic } })).status).toBe(200);
    // and byte ranges of any blob
    const blobUrl = `${sn.url}/v1/blobs/${priv.host}/private/app/${layer.digest}`;
    expect((await fetch(blobUrl, { headers: { range: "bytes=0-9" } })).status).toBe(401);
    const ranged = await fetch(blobUrl, { headers: { range: "bytes=0-9", authorization: basic } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(layer.blob.subarray(0, 10))).toBe(true);

    const p = await preheat({ supernodes: [sn.url], image: privRef, credentials: { username: user, password }, pollMs: 20 });
    expect(p.chunksDone).toBe(p.chunksTotal);
    const denied = await preheat({ supernodes: [sn.url], image: privRef, pollMs: 20 }).catch((e: unknown) => e as Error);
    expect((denied as Error).message).toContain("SHOAL_ERR_REGISTRY_UNAUTHORIZED");

    const text = lines.join("");
    expect(text.length).toBeGreaterThan(0);
    for (const secret of [password, "nope-Wrong-pass", basic.slice(6), wrong.slice(6)]) expect(text).not.toContain(secret);
  });
});
