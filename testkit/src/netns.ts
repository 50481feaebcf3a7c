/**
 * Network namespaces for benches and tests: a namespace joined to the host by
 * a veth pair with addresses from a /30 of 10.213.0.0/16, optionally rate
 * capped with `tc tbf` in both directions, and a real registry
 * (`docker-registry`) listening inside it.
 *
 * Traffic stays on this machine: the host reaches the namespace address
 * through the veth and nothing is routed anywhere else (the namespace has no
 * default route). Everything created here is removed by `destroy()`/`stop()`
 * and, as a last resort, by a process exit hook; namespaces left behind by a
 * process that was killed outright are swept by the next `createNetns()`.
 * Needs root and iproute2.
 */
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { blobStats, RegistryLog, registryConfigYaml } from "./registry-common.ts";
import { run, type RunResult } from "./exec.ts";
import { deleteNamespaceSync, namespaceRunners, pidAlive, tbfArgs, trySync } from "./host-tools.ts";
import type { RegistryStats } from "./registry.ts";

/** Options of {@link createNetns}. */
export interface CreateNetnsOptions {
  /** Namespace name. Default `shoalns-<pid>-<n>` (the pid lets later runs sweep leftovers of killed processes). */
  name?: string;
  /**
   * Host-side address. With `nsAddr`, both must lie in one /30 and be unused
   * on the host. Default: a free /30 of 10.213.0.0/16, claimed atomically
   * (the veth names are derived from it, and creating a veth that exists fails).
   */
  hostAddr?: string;
  /** Namespace-side address (see `hostAddr`). */
  nsAddr?: string;
  /** Cap each direction to this many Mbit/s with `tc tbf` (egress of both veth ends). */
  rateMbit?: number;
}

/** A live network namespace. */
export interface Netns {
  readonly name: string;
  /** Address of the namespace's veth end (what the host connects to). */
  readonly nsAddr: string;
  /** Address of the host's veth end (what the namespace sees as its peer). */
  readonly hostAddr: string;
  /** Host-side veth interface name. */
  readonly hostIf: string;
  /** Namespace-side veth interface name. */
  readonly nsIf: string;
  /** The cap in Mbit/s, if any. */
  readonly rateMbit: number | undefined;
  /** Runs `cmd args` inside the namespace to completion (rejects on non-zero exit). */
  exec(cmd: string, args: readonly string[], opts?: { signal?: AbortSignal; env?: Record<string, string> }): Promise<RunResult>;
  /**
   * Starts a long-running `cmd args` inside the namespace (`ip netns exec`
   * execs the command, so the child's pid is the command's). Killed by
   * `destroy()` if still running.
   */
  spawn(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** True once `destroy()` has begun. */
  readonly destroyed: boolean;
  /** Kills what runs inside, deletes the namespace and the veth pair. Idempotent. */
  destroy(): Promise<void>;
}

const NET_BASE = (10 << 24) | (213 << 16);
const SUBNETS = 1 << 14; // /30s in a /16
const NAME_PREFIX = "shoalns-";
const REGISTRY_DIR_PREFIX = "shoal-nsregistry-";

interface LiveNs {
  name: string;
  hostIf: string;
  children: Set<ChildProcess>;
}
const live = new Set<LiveNs>();
let hooksInstalled = false;
let seq = 0;

function ipv4ToInt(a: string): number {
  const p = a.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${a}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Synchronous teardown, for the exit hook and stale sweeps. */
function destroySync(name: string, hostIf: string | undefined, children: Iterable<ChildProcess>): void {
  for (const c of children) {
    if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  }
  deleteNamespaceSync(name);
  if (hostIf !== undefined) trySync("ip", ["link", "del", hostIf]);
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", () => {
    for (const ns of live) destroySync(ns.name, ns.hostIf, ns.children);
    live.clear();
  });
  // Without a handler these signals end the process without "exit" hooks.
  for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
    if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(code));
  }
}

/**
 * Removes `shoalns-<pid>-<n>` namespaces whose creating process is gone
 * (killed before its exit hook could run), with the processes left inside
 * them (all started by that process), their veth pairs and the temp dirs of
 * registries that ran in them.
 */
export function sweepStaleNetns(): string[] {
  const swept: string[] = [];
  const out = trySync("ip", ["netns", "list"]) ?? "";
  for (const line of out.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = new RegExp(`^${NAME_PREFIX}(\\d+)-\\d+$`).exec(name);
    if (!m || pidAlive(Number(m[1]))) continue;
    destroySync(name, undefined, []);
    for (const f of readdirSync(tmpdir())) {
      if (f.startsWith(`${REGISTRY_DIR_PREFIX}${name}-`)) rmSync(join(tmpdir(), f), { recursive: true, force: true });
    }
    swept.push(name);
  }
  return swept;
}

/** IPv4 addresses configured on the host (all interfaces). */
async function hostAddresses(): Promise<Set<number>> {
  const { stdout } = await run("ip", ["-o", "-4", "addr", "show"]);
  const set = new Set<number>();
  for (const m of stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)) set.add(ipv4ToInt(m[1]!));
  return set;
}

/**
 * Creates a network namespace joined to the host by a veth pair, addresses
 * assigned and links (and the namespace's `lo`) up, optionally rate capped in
 * both directions. Rejects (after undoing what it did) on any failure.
 */
export async function createNetns(opts: CreateNetnsOptions = {}): Promise<Netns> {
  installHooks();
  sweepStaleNetns();
  if ((opts.hostAddr === undefined) !== (opts.nsAddr === undefined)) throw new Error("createNetns: give both hostAddr and nsAddr, or neither");
  if (opts.rateMbit !== undefined && !(opts.rateMbit > 0)) throw new Error("createNetns: rateMbit must be positive");
  const name = opts.name ?? `${NAME_PREFIX}${process.pid}-${++seq}`;
  if (!/^[\w.-]{1,64}$/.test(name)) throw new Error(`createNetns: bad namespace name ${JSON.stringify(name)}`);

  const entry: LiveNs = { name, hostIf: "", children: new Set() };
  await run("ip", ["netns", "add", name]);
  live.add(entry);
  try {
    const used = await hostAddresses();
    let hostAddr = "";
    let nsAddr = "";
    if (opts.hostAddr !== undefined && opts.nsAddr !== undefined) {
      const h = ipv4ToInt(opts.hostAddr);
      const n = ipv4ToInt(opts.nsAddr);
      if (h >>> 2 !== n >>> 2 || h === n || (h & 3) === 0 || (h & 3) === 3 || (n & 3) === 0 || (n & 3) === 3) {
        throw new Error(`createNetns: ${opts.hostAddr} and ${opts.nsAddr} are not two host addresses of one /30`);
      }
      if (used.has(h) || used.has(n)) throw new Error(`createNetns: ${opts.hostAddr} or ${opts.nsAddr} is already in use on this host`);
      const idx = (h - NET_BASE) >>> 2;
      const ifBase = idx < SUBNETS && h >>> 16 === NET_BASE >>> 16 ? `shoal${idx}` : `shoalx${randomBytes(3).toString("hex")}`;
      await run("ip", ["link", "add", `${ifBase}h`, "type", "veth", "peer", "name", `${ifBase}n`, "netns", name]);
      entry.hostIf = `${ifBase}h`;
      hostAddr = opts.hostAddr;
      nsAddr = opts.nsAddr;
    } else {
      const start = (process.pid * 131 + randomBytes(2).readUInt16BE(0)) % SUBNETS;
      for (let i = 0; i < SUBNETS && entry.hostIf === ""; i++) {
        const idx = (start + i) % SUBNETS;
        const base = (NET_BASE + idx * 4) >>> 0;
        if ([0, 1, 2, 3].some((k) => used.has(base + k))) continue;
        try {
          // Fails with "File exists" when another run holds this /30.
          await run("ip", ["link", "add", `shoal${idx}h`, "type", "veth", "peer", "name", `shoal${idx}n`, "netns", name]);
        } catch (err) {
          if (/exists/i.test((err as Error).message)) continue;
          throw err;
        }
        entry.hostIf = `shoal${idx}h`;
        hostAddr = intToIpv4(base + 1);
        nsAddr = intToIpv4(base + 2);
      }
      if (entry.hostIf === "") throw new Error("createNetns: no free /30 left in 10.213.0.0/16");
    }
    const hostIf = entry.hostIf;
    const nsIf = hostIf.replace(/h$/, "n");
    const inNs = (...args: string[]) => run("ip", ["netns", "exec", name, ...args]);
    await run("ip", ["addr", "add", `${hostAddr}/30`, "dev", hostIf]);
    await run("ip", ["link", "set", hostIf, "up"]);
    await inNs("ip", "link", "set", "lo", "up");
    await inNs("ip", "addr", "add", `${nsAddr}/30`, "dev", nsIf);
    await inNs("ip", "link", "set", nsIf, "up");
    if (opts.rateMbit !== undefined) {
      // Host-side egress: traffic towards the namespace. Namespace-side egress: its answers.
      await run("tc", tbfArgs(hostIf, opts.rateMbit));
      await inNs("tc", ...tbfArgs(nsIf, opts.rateMbit));
    }

    let destroyed = false;
    const { exec, spawn } = namespaceRunners(name, () => destroyed, (child) => {
      entry.children.add(child);
      child.once("exit", () => entry.children.delete(child));
    });
    return {
      name,
      nsAddr,
      hostAddr,
      hostIf,
      nsIf,
      rateMbit: opts.rateMbit,
      get destroyed() {
        return destroyed;
      },
      exec,
      spawn,
      async destroy() {
        if (destroyed) return;
        destroyed = true;
        const exits: Promise<unknown>[] = [];
        for (const c of entry.children) {
          if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
          exits.push(new Promise((resolve) => c.once("exit", resolve)));
          try {
            process.kill(c.pid, "SIGKILL");
          } catch {
            // gone
          }
        }
        await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
        destroySync(name, hostIf, entry.children);
        live.delete(entry);
      },
    };
  } catch (err) {
    destroySync(name, entry.hostIf || undefined, entry.children);
    live.delete(entry);
    throw err;
  }
}

/** A registry running inside a namespace (see {@link startNetnsRegistry}). */
export interface NetnsRegistry {
  /** `NSADDR:PORT`, the registry part of references. */
  readonly host: string;
  /** `http://NSADDR:PORT`. */
  readonly url: string;
  /** Storage root (inside the temp dir deleted by `stop()`). */
  readonly dataDir: string;
  readonly pid: number | undefined;
  /** Statistics from the log lines read so far; `settle()` first to include recent requests. */
  stats(): RegistryStats;
  resetStats(): void;
  /** Waits until the registry has logged every request it answered before this call. */
  settle(): Promise<void>;
  /** Kills the registry and deletes its storage. Idempotent. Does not destroy the namespace. */
  stop(): Promise<void>;
}


const liveDirs = new Set<string>();
let dirHookInstalled = false;

/**
 * Starts `/usr/bin/docker-registry serve` inside `ns`, listening on
 * `ns.nsAddr:port` (default 5000) with storage in a fresh temp dir, no auth,
 * and resolves once `GET /v2/` answers from the host. Blob bytes served are
 * counted from the registry's own log, as `startRegistry()` does.
 */
export async function startNetnsRegistry(ns: Netns, opts: { port?: number; binary?: string } = {}): Promise<NetnsRegistry> {
  const port = opts.port ?? 5000;
  // Named after the namespace so a sweep of a stale namespace finds it too.
  const dir = await mkdtemp(join(tmpdir(), `${REGISTRY_DIR_PREFIX}${ns.name}-`));
  liveDirs.add(dir);
  if (!dirHookInstalled) {
    dirHookInstalled = true;
    process.on("exit", () => {
      for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
    });
  }
  const dataDir = join(dir, "data");
  const configPath = join(dir, "config.yml");
  await writeFile(configPath, registryConfigYaml(dataDir, `${ns.nsAddr}:${port}`));

  const log = new RegistryLog();
  const child = ns.spawn(opts.binary ?? "/usr/bin/docker-registry", ["serve", configPath], { stdio: ["ignore", "ignore", "pipe"] });
  log.attach(child);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      try {
        process.kill(child.pid, "SIGKILL");
        await gone;
      } catch {
        // already gone
      }
    }
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };

  const host = `${ns.nsAddr}:${port}`;
  const url = `http://${host}`;
  try {
    await log.waitReady(child, url);
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    host,
    url,
    dataDir,
    get pid() {
      return child.pid;
    },
    stats() {
      return blobStats(log.requests);
    },
    resetStats() {
      log.requests = [];
    },
    async settle() {
      if (!stopped) await log.settle(url);
    },
    stop,
  };
}
