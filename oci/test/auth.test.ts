import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { credentialsFromDockerConfig, DockerConfigCredentialStore, dockerConfigPath, parseWwwAuthenticate, staticCredentials } from "../src/index.ts";

describe("parseWwwAuthenticate", () => {
  it("parses Docker Hub's bearer challenge", () => {
    expect(parseWwwAuthenticate('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"')).toEqual([
      { scheme: "bearer", realm: "https://auth.docker.io/token", service: "registry.docker.io", scope: "repository:library/ubuntu:pull" },
    ]);
  });

  it("parses scheme case-insensitively, spaces around '=', escapes, unquoted values and error", () => {
    expect(parseWwwAuthenticate('bEaReR  realm = "https://a/t?x=\\"y\\"" , service=reg.example, error="insufficient_scope",scope="repository:a:pull repository:b:pull"')).toEqual([
      { scheme: "bearer", realm: 'https://a/t?x="y"', service: "reg.example", error: "insufficient_scope", scope: "repository:a:pull repository:b:pull" },
    ]);
  });

  it("parses Basic, with and without realm", () => {
    expect(parseWwwAuthenticate('Basic realm="basic-realm"')).toEqual([{ scheme: "basic", realm: "basic-realm" }]);
    expect(parseWwwAuthenticate("Basic")).toEqual([{ scheme: "basic" }]);
  });

  it("parses several challenges in one header or several headers", () => {
    expect(parseWwwAuthenticate('Negotiate abc==, Basic realm="r", Bearer realm="https://t/",service="s"')).toEqual([
      { scheme: "basic", realm: "r" },
      { scheme: "bearer", realm: "https://t/", service: "s" },
    ]);
    expect(parseWwwAuthenticate(['Basic realm="r"', 'Bearer realm="https://t/"'])).toHaveLength(2);
  });

  it("drops what it cannot use and never throws on junk", () => {
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate("")).toEqual([]);
    expect(parseWwwAuthenticate('Bearer service="no-realm"')).toEqual([]);
    expect(parseWwwAuthenticate("Digest nonce=1")).toEqual([]);
    for (const junk of ['"', "=,=", 'Bearer realm="unterminated', "@@@", ",,, ,", "Bearer ===="]) {
      expect(() => parseWwwAuthenticate(junk)).not.toThrow();
    }
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([{ scheme: "bearer", realm: "unterminated" }]);
  });
});

describe("docker config credentials", () => {
  const b64 = (s: string): string => Buffer.from(s).toString("base64");
  const config = {
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hubuser:hub:pass") },
      "127.0.0.1:5000": { auth: b64("local:secret") },
      "https://reg.example.com:8443/v2/": { username: "u2", password: "p2" },
      "ghcr.io": { auth: "" },
      "broken.example": { auth: b64("nocolon") },
    },
  };

  it("decodes auth and splits at the first colon", () => {
    expect(credentialsFromDockerConfig(config, "docker.io")).toEqual({ username: "hubuser", password: "hub:pass" });
    expect(credentialsFromDockerConfig(config, "127.0.0.1:5000")).toEqual({ username: "local", password: "secret" });
  });

  it("matches keys with scheme and path, and Docker Hub aliases", () => {
    expect(credentialsFromDockerConfig(config, "reg.example.com:8443")).toEqual({ username: "u2", password: "p2" });
    expect(credentialsFromDockerConfig(config, "registry-1.docker.io")).toEqual({ username: "hubuser", password: "hub:pass" });
    expect(credentialsFromDockerConfig({ auths: { "docker.io": { auth: b64("a:b") } } }, "docker.io")).toEqual({ username: "a", password: "b" });
  });

  it("returns undefined for no match, a different port, or unusable entries", () => {
    expect(credentialsFromDockerConfig(config, "127.0.0.1:5001")).toBeUndefined();
    expect(credentialsFromDockerConfig(config, "reg.example.com")).toBeUndefined();
    expect(credentialsFromDockerConfig(config, "ghcr.io")).toBeUndefined();
    expect(credentialsFromDockerConfig(config, "broken.example")).toBeUndefined();
    expect(credentialsFromDockerConfig(null, "docker.io")).toBeUndefined();
    expect(credentialsFromDockerConfig({ auths: 3 }, "docker.io")).toBeUndefined();
  });

  it("finds config.json through DOCKER_CONFIG or the home directory", () => {
    expect(dockerConfigPath({ DOCKER_CONFIG: "/etc/dc" }, "/home/x")).toBe("/etc/dc/config.json");
    expect(dockerConfigPath({}, "/home/x")).toBe("/home/x/.docker/config.json");
  });

  it("staticCredentials maps Docker Hub aliases", async () => {
    const s = staticCredentials({ "index.docker.io": { username: "a", password: "b" } });
    expect(await s.get("docker.io")).toEqual({ username: "a", password: "b" });
    expect(await s.get("ghcr.io")).toBeUndefined();
  });

  describe("DockerConfigCredentialStore", () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "shoal-oci-auth-"));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it("reads the file on each lookup and tolerates missing or bad files", async () => {
      const path = join(dir, "config.json");
      const store = new DockerConfigCredentialStore({}, { configPath: path });
      expect(await store.get("127.0.0.1:5000")).toBeUndefined();
      await writeFile(path, JSON.stringify(config));
      expect(await store.get("127.0.0.1:5000")).toEqual({ username: "local", password: "secret" });
      await writeFile(path, "{not json");
      expect(await store.get("127.0.0.1:5000")).toBeUndefined();
    });

    it("uses DOCKER_CONFIG by default", async () => {
      const old = process.env["DOCKER_CONFIG"];
      process.env["DOCKER_CONFIG"] = dir;
      try {
        await writeFile(join(dir, "config.json"), JSON.stringify(config));
        expect(await new DockerConfigCredentialStore().get("docker.io")).toEqual({ username: "hubuser", password: "hub:pass" });
      } finally {
        if (old === undefined) delete process.env["DOCKER_CONFIG"];
        else process.env["DOCKER_CONFIG"] = old;
      }
    });
  });
});
