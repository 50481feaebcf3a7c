// What ships for fleets besides the binary: the Kubernetes manifests
// (validated against Kubernetes' own API schemas, kubernetes-models), the
// config files of the Debian package and the ConfigMap (resolved against
// each command's settings schema, so that no key is misspelt), and the
// systemd units (systemd-analyze verify, against the artifact's tree).
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_SETTINGS, KEEPER_SETTINGS } from "@shoal/agent/config";
import { resolveSettings, type Setting } from "@shoal/service/settings";
import { run } from "@shoal/testkit";
import { DaemonSet, StatefulSet } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { SUPERNODE_SETTINGS } from "../src/supernode-settings.ts";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const k8sDir = join(repo, "deploy/kubernetes");
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/DaemonSet": DaemonSet, "apps/v1/StatefulSet": StatefulSet, "batch/v1/Job": Job,
  "v1/ConfigMap": ConfigMap, "v1/Namespace": Namespace, "v1/Secret": Secret, "v1/Service": Service,
};
const SCHEMAS: Record<string, Record<string, Setting<unknown>>> = { "agent.json": AGENT_SETTINGS, "fuse-keeper.json": KEEPER_SETTINGS, "supernode.json": SUPERNODE_SETTINGS };

async function manifests(): Promise<Array<{ file: string; doc: { apiVersion: string; kind: string; metadata: { name: string }; data?: Record<string, string> } }>> {
  const out = [];
  for (const file of (await readdir(k8sDir)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml").sort()) {
    for (const d of parseAllDocuments(await readFile(join(k8sDir, file), "utf8"))) {
      expect(d.errors, file).toEqual([]);
      out.push({ file, doc: d.toJS() as never });
    }
  }
  return out;
}

/** Resolve a config file's text against `schema`, as `--config` would: unknown keys and bad values throw. */
async function resolveConfig(dir: string, name: string, text: string): Promise<void> {
  const file = join(dir, name);
  await writeFile(file, text);
  resolveSettings(SCHEMAS[name]!, {}, {}, file);
}

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "shoal-deploy-"));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("deploy/kubernetes", () => {
  it("every object validates against Kubernetes' API schema, and the kustomization names every file", async () => {
    const all = await manifests();
    const kinds = all.map(({ doc }) => `${doc.apiVersion}/${doc.kind}`);
    for (const k of ["apps/v1/DaemonSet", "apps/v1/StatefulSet", "batch/v1/Job", "v1/Secret", "v1/Service", "v1/ConfigMap"]) expect(kinds).toContain(k);
    for (const { file, doc } of all) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: ${doc.kind}`).toBeDefined();
      expect(() => new Model!(doc as never).validate(), `${file}: ${doc.kind} ${doc.metadata.name}`).not.toThrow();
    }
    const kustomization = await readFile(join(k8sDir, "kustomization.yaml"), "utf8");
    // the Secret is a template for your own key; the Job runs before a peak
    for (const f of new Set(all.map((m) => m.file))) if (f !== "preheat-job.yaml" && f !== "swarm-key-secret.yaml") expect(kustomization).toContain(`- ${f}`);
  });

  it("refuses a manifest with a field of the wrong type or a required one missing (the check can fail)", () => {
    const ds = (container: object) => ({ apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" }, spec: { selector: { matchLabels: { a: "b" } }, template: { metadata: { labels: { a: "b" } }, spec: { containers: [container] } } } });
    expect(() => new DaemonSet(ds({ name: "c", image: "i" }) as never).validate()).not.toThrow();
    expect(() => new DaemonSet(ds({ name: "c", image: "i", args: "agent --config x" }) as never).validate()).toThrow();
    expect(() => new DaemonSet(ds({ image: "i" }) as never).validate()).toThrow();
  });

  it("the ConfigMap's config files resolve against the settings schemas of agent, keeper and supernode", async () => {
    const cm = (await manifests()).find(({ doc }) => doc.kind === "ConfigMap")!.doc;
    expect(Object.keys(cm.data!).sort()).toEqual(Object.keys(SCHEMAS).sort());
    for (const [name, text] of Object.entries(cm.data!)) await resolveConfig(work, name, text);
  });
});

describe("packaging", () => {
  it("the Debian package's config files resolve against the settings schemas; a misspelt key does not", async () => {
    const dir = join(repo, "packaging/etc");
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(Object.keys(SCHEMAS).sort());
    for (const name of names) await resolveConfig(work, name, await readFile(join(dir, name), "utf8"));
    await expect(resolveConfig(work, "agent.json", JSON.stringify({ "cache-sise": "1GiB" }))).rejects.toThrow(/unknown setting "cache-sise"/);
  });

  it("systemd-analyze verify accepts every unit, with /usr/bin/shoal in place", async () => {
    // a root with this host's systemd units (the targets they name), /bin/sh, a stand-in /usr/bin/shoal and shoal's units
    const root = join(work, "root");
    const units = join(repo, "packaging/systemd");
    await run("mkdir", ["-p", join(root, "usr/bin"), join(root, "usr/lib/systemd")]);
    await run("cp", ["-a", "/usr/lib/systemd/system", join(root, "usr/lib/systemd/")]);
    await run("ln", ["-s", "usr/lib", join(root, "lib")]);
    await run("ln", ["-s", "usr/bin", join(root, "bin")]);
    await run("cp", ["/bin/dash", join(root, "usr/bin/sh")]);
    await writeFile(join(root, "usr/bin/shoal"), "#!/bin/sh\n", { mode: 0o755 });
    const names = (await readdir(units)).sort();
    expect(names).toEqual(["shoal-agent.service", "shoal-fuse-keeper.service", "shoal-supernode.service"]);
    for (const n of names) await writeFile(join(root, "lib/systemd/system", n), await readFile(join(units, n)));
    // non-zero exit rejects; warnings about the units come on stderr
    const verify = (files: string[]) => run("systemd-analyze", ["verify", `--root=${root}`, ...files]);
    const r = await verify(names.map((n) => join(root, "lib/systemd/system", n)));
    expect(`${r.stdout}${r.stderr}`.split("\n").filter((l) => /shoal/.test(l))).toEqual([]);
    // and it would say so: a misspelt key in a copy
    const broken = join(root, "lib/systemd/system/shoal-broken.service");
    await writeFile(broken, (await readFile(join(units, names[0]!), "utf8")).replace("Restart=", "Restrat="));
    const b = await verify([broken]);
    expect(`${b.stdout}${b.stderr}`).toMatch(/Unknown key 'Restrat'/);
  });
});
