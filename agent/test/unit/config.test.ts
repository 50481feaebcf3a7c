import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { AGENT_SETTINGS } from "../../src/config/agent-config.ts";
import { parseBytes, parseDuration } from "@shoal/base";
import { parseListen, resolveSettings } from "@shoal/service";

describe("agent settings", () => {
  it("takes flags over env over config file over defaults", () => {
    const dir = mkdtempSync(join(tmpdir(), "shoal-cfg-"));
    try {
      const file = join(dir, "agent.json");
      writeFileSync(file, JSON.stringify({ "prefetch-rate": "1M", "cache-size": "2G", root: "/from/file" }));
      const c = resolveSettings(AGENT_SETTINGS, { root: "/from/flag" }, { SHOAL_CACHE_SIZE: "3G", SHOAL_PREFETCH: "off" }, file);
      expect(c.root).toBe("/from/flag");
      expect(c.cacheSize).toBe(3 * 1024 ** 3);
      expect(c.prefetchRate).toBe(1024 ** 2);
      expect(c.prefetch).toBe(false);
      expect(c.fetchTimeout).toBe(20_000);
      writeFileSync(file, JSON.stringify({ "no-such-setting": 1 }));
      expect(() => resolveSettings(AGENT_SETTINGS, {}, {}, file)).toThrow(/unknown setting "no-such-setting"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names where a bad value came from", () => {
    expect(() => resolveSettings(AGENT_SETTINGS, {}, { SHOAL_PREFETCH_RATE: "fast" })).toThrow(/\$SHOAL_PREFETCH_RATE: not a byte count/);
    expect(() => resolveSettings(AGENT_SETTINGS, { metricsListen: "nope" }, {})).toThrow(/--metrics-listen: not HOST:PORT/);
  });

  it("parses units", () => {
    expect(parseBytes("64M")).toBe(64 << 20);
    expect(parseBytes("512")).toBe(512);
    expect(parseDuration("20s")).toBe(20_000);
    expect(parseDuration("150ms")).toBe(150);
    expect(parseListen("[::1]:9100")).toEqual({ host: "::1", port: 9100 });
  });
});
