// AccessCheck alone, against a scripted registry: what a frozen registry
// costs a caller the registry allowed before, and one it never allowed.
import { RegistryError, type RegistryClient, type RegistryClients } from "@shoal/oci";
import { describe, expect, it } from "vitest";
import { AccessCheck } from "../src/access.ts";

const layer = { registry: "reg.example", repository: "team/app", digest: `sha256:${"a".repeat(64)}` };
const creds = { username: "u", password: "p" };

/** A registry whose blob HEAD answers as `answer` says, called anew on each check. */
function scripted(answer: () => Promise<boolean>): RegistryClients {
  const client = { headBlob: () => answer() } as unknown as RegistryClient;
  return { client: () => client, close: async () => undefined };
}

const never = () => new Promise<boolean>(() => undefined);

describe("AccessCheck", () => {
  it("lets a caller verified before through once a frozen registry has had its probe time", async () => {
    let now = 0;
    let answer: () => Promise<boolean> = async () => true;
    const access = new AccessCheck({ origins: scripted(() => answer()), now: () => now }, { ttlMs: 1000, probeMs: 50 });
    await access.check(layer, creds);
    now += 5000; // the yes has expired; the registry now hangs
    answer = never;
    await expect(access.check(layer, creds)).resolves.toBeUndefined();
  });

  it("keeps a caller never verified waiting on a frozen registry, and refuses one the registry now refuses", async () => {
    let now = 0;
    let answer: () => Promise<boolean> = never;
    const access = new AccessCheck({ origins: scripted(() => answer()), now: () => now }, { ttlMs: 1000, probeMs: 50 });
    const stranger = access.check(layer, { username: "x", password: "y" }, { signal: AbortSignal.timeout(300) });
    await expect(stranger).rejects.toThrow();
    answer = async () => true;
    await access.check(layer, creds);
    now += 5000;
    answer = async () => {
      throw new RegistryError("SHOAL_ERR_REGISTRY_UNAUTHORIZED", "401", { status: 401 });
    };
    await expect(access.check(layer, creds)).rejects.toThrow(/401/);
  });

  it("remembers a caller it let through, until the registry's late answer is a no", async () => {
    let now = 0;
    let heads = 0;
    let late: { reject: (e: Error) => void } | undefined;
    let answer: () => Promise<boolean> = async () => true;
    const access = new AccessCheck({ origins: scripted(() => (heads++, answer())), now: () => now }, { ttlMs: 1000, probeMs: 50 });
    await access.check(layer, creds);
    now += 5000;
    answer = () => new Promise<boolean>((_, reject) => (late = { reject }));
    await access.check(layer, creds); // let through after the probe
    const asked = heads;
    await access.check(layer, creds); // remembered: no new question to the frozen registry
    expect(heads).toBe(asked);
    late!.reject(new RegistryError("SHOAL_ERR_REGISTRY_UNAUTHORIZED", "401 at last", { status: 401 }));
    await new Promise((r) => setImmediate(r));
    answer = async () => {
      throw new RegistryError("SHOAL_ERR_REGISTRY_UNAUTHORIZED", "401 now", { status: 401 });
    };
    await expect(access.check(layer, creds)).rejects.toThrow(/401 now/);
  });
});
