import { InvalidArgumentError } from "@shoal/base";
import { describe, expect, it } from "vitest";
import { containerdHostsToml, podmanRegistriesConf, withRegistryMirror } from "../src/index.ts";

const M = "http://127.0.0.1:7075";

describe("engine configuration", () => {
  it("containerd: a new hosts.toml has the server and the mirror; an existing one keeps every line, the mirror first among its hosts", () => {
    expect(containerdHostsToml(undefined, "docker.io", M)).toContain('server = "https://registry-1.docker.io"');
    expect(containerdHostsToml(undefined, "reg.example:5000", M, true)).toContain('server = "http://reg.example:5000"');
    expect(containerdHostsToml(undefined, "_default", M)).not.toContain("server");
    const existing = '# mine\nserver = "https://reg.example"\n\n[host."https://cache.example"]\n  capabilities = ["pull"]\n';
    const merged = containerdHostsToml(existing, "reg.example", M);
    expect(merged).toContain("# mine");
    expect(merged.indexOf(`[host."${M}"]`)).toBeLessThan(merged.indexOf('[host."https://cache.example"]'));
    expect(containerdHostsToml(merged, "reg.example", M)).toBe(merged); // again: unchanged
    expect(containerdHostsToml('server = "https://reg.example"\n', "reg.example", M)).toMatch(/server = "https:\/\/reg.example"\n\n\[host/);
  });

  it("podman: one mirror per registry, the port written __", () => {
    const conf = podmanRegistriesConf(["docker.io", "reg.example:5000"], "127.0.0.1:7075");
    expect(conf).toContain('location = "127.0.0.1:7075/reg.example__5000"');
    expect(conf).toContain('prefix = "docker.io"');
    expect(conf.match(/\[\[registry\.mirror\]\]/g)).toHaveLength(2);
  });

  it("docker and pouch: the mirror first in registry-mirrors, every other key kept; bad JSON refused", () => {
    const merged = JSON.parse(withRegistryMirror('{"log-level":"warn","registry-mirrors":["https://other.example","http://127.0.0.1:7075/"]}', M)) as Record<string, unknown>;
    expect(merged).toEqual({ "log-level": "warn", "registry-mirrors": [M, "https://other.example"] });
    expect(JSON.parse(withRegistryMirror(undefined, M))).toEqual({ "registry-mirrors": [M] });
    for (const bad of ["{", "[]", '{"registry-mirrors":"x"}']) expect(() => withRegistryMirror(bad, M), bad).toThrow(InvalidArgumentError);
  });
});
