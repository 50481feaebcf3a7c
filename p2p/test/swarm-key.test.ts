import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatSwarmKey, generateSwarmKey, parseSwarmKey, readSwarmKey, SwarmKeyError, toSwarmKey } from "../src/index.ts";

const HEX = "a".repeat(32) + "0123456789ABCDEF".repeat(2);

describe("swarm key", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("round-trips generate -> format -> parse", () => {
    const key = generateSwarmKey();
    expect(key.psk.byteLength).toBe(32);
    const text = formatSwarmKey(key);
    expect(text).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
    expect(parseSwarmKey(text).psk).toEqual(key.psk);
    expect(generateSwarmKey().psk).not.toEqual(key.psk);
  });

  it("accepts CRLF, no trailing newline and upper-case hex", () => {
    const a = parseSwarmKey(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${HEX}\r\n`);
    const b = parseSwarmKey(new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${HEX.toLowerCase()}`));
    expect(a.psk).toEqual(b.psk);
    expect(toSwarmKey(a.psk).psk).toEqual(a.psk);
  });

  it.each([
    ["empty", ""],
    ["wrong header", `/key/swarm/psk/2.0.0/\n/base16/\n${HEX}\n`],
    ["unsupported codec", `/key/swarm/psk/1.0.0/\n/base64/\n${HEX}\n`],
    ["short key", `/key/swarm/psk/1.0.0/\n/base16/\n${HEX.slice(2)}\n`],
    ["non-hex", `/key/swarm/psk/1.0.0/\n/base16/\n${"g".repeat(64)}\n`],
    ["extra line", `/key/swarm/psk/1.0.0/\n/base16/\n${HEX}\nmore\n`],
  ])("rejects %s", (_name, text) => {
    expect(() => parseSwarmKey(text)).toThrow(SwarmKeyError);
    try {
      parseSwarmKey(text);
    } catch (err) {
      expect((err as SwarmKeyError).code).toBe("SHOAL_ERR_SWARM_KEY");
    }
  });

  it("reads a file; a bad or missing file is a SwarmKeyError", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shoal-swarmkey-"));
    dirs.push(dir);
    const key = generateSwarmKey();
    await writeFile(join(dir, "swarm.key"), formatSwarmKey(key));
    expect((await readSwarmKey(join(dir, "swarm.key"))).psk).toEqual(key.psk);
    await writeFile(join(dir, "bad.key"), "not a key\n");
    await expect(readSwarmKey(join(dir, "bad.key"))).rejects.toBeInstanceOf(SwarmKeyError);
    await expect(readSwarmKey(join(dir, "missing.key"))).rejects.toMatchObject({ code: "SHOAL_ERR_SWARM_KEY" });
  });
});
