/**
 * A private LAN of network namespaces for benches: a Linux bridge in the root
 * namespace (with the first address of a private /24, so this process reaches
 * every member) and one namespace per member, each attached to the bridge by
 * a veth pair and rate capped with `tc tbf` in both directions (egress of the
 * bridge-side end: traffic towards the member; egress of the member's end:
 * its traffic out).
 *
 * Traffic stays among these namespaces and this host: nothing is routed
 * (no NAT, no default route in the namespaces). Members look like
 * {@link Netns} (so `startNetnsRegistry` works on them). Namespaces are named
 * `shoalns-<pid>-<n>` so `sweepStaleNetns()` removes those of killed runs;
 * the bridge `shlbr<pid>` of a killed run is swept by the next
 * `createNetnsLan()`. Needs root and iproute2.
 */
import type { ChildProcess, SpawnOptions } from "node:child_process";
import { run } from "./exec.ts";
import { deleteNamespaceSync, namespaceRunners, pidAlive, tbfArgs, trySync } from "./host-tools.ts";
import { sweepStaleNetns, type Netns } from "./netns.ts";

/** One member of {@link createNetnsLan}. */
export interface NetnsLanMemberSpec {
  /** Cap each direction to this many Mbit/s. */
  rateMbit: number;
}

/** A member namespace: a {@link Netns} whose `hostAddr` is the bridge's address. */
export interface NetnsLanMember extends Netns {
  /** Spawns `cmd args` with only the network namespace switched (`nsenter --net`): mounts stay in the shared mount namespace. */
  spawnNetOnly(cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
}

/** A live LAN. */
export interface NetnsLan {
  readonly bridge: string;
  /** `10.214.X` (the /24 without its last octet). */
  readonly prefix: string;
  /** The bridge's address (root namespace). */
  readonly bridgeAddr: string;
  readonly members: readonly NetnsLanMember[];
  /** Kills what runs inside, deletes every namespace, veth and the bridge. Idempotent. */
  destroy(): Promise<void>;
}

const BRIDGE_PREFIX = "shlbr";
let lanSeq = 0;
const liveLans = new Set<() => void>();
let hookInstalled = false;

/** Deletes `shlbr<pid>` bridges (and their `shl<pid>v<k>` veths) of processes that are gone. */
export function sweepStaleLans(): string[] {
  sweepStaleNetns();
  const swept: string[] = [];
  const out = trySync("ip", ["-o", "link", "show"]) ?? "";
  for (const m of out.matchAll(/^\d+:\s+(shl(?:br)?(\d+)(?:v\d+)?)[@:]/gm)) {
    const [, name, pid] = m;
    if (pidAlive(Number(pid))) continue;
    trySync("ip", ["link", "del", name!]);
    swept.push(name!);
  }
  return swept;
}

/** A /24 of 10.214.0.0/16 that no address or route on this host touches. */
async function freePrefix(): Promise<string> {
  const { stdout: addrs } = await run("ip", ["-o", "-4", "addr", "show"]);
  const { stdout: routes } = await run("ip", ["-4", "route", "show", "table", "all"]);
  const text = `${addrs}\n${routes}`;
  const start = (process.pid * 7 + lanSeq) % 250;
  for (let i = 0; i < 250; i++) {
    const x = ((start + i) % 250) + 1;
    const p = `10.214.${x}.`;
    if (!text.includes(p) && !/\b10\.214\.0\.0\/16\b|\b10\.0\.0\.0\/8\b/.test(text)) return `10.214.${x}`;
  }
  throw new Error("createNetnsLan: no free /24 in 10.214.0.0/16");
}

/**
 * Creates the bridge and one namespace per entry of `members` (addresses
 * `.2`, `.3`, … of a free /24 of 10.214.0.0/16; the bridge has `.1`).
 * Rejects, after undoing everything, on failure.
 */
export async function createNetnsLan(members: readonly NetnsLanMemberSpec[]): Promise<NetnsLan> {
  if (members.length === 0 || members.length > 200) throw new Error("createNetnsLan: 1 to 200 members");
  sweepStaleLans();
  const id = `${process.pid}`;
  const lanNo = ++lanSeq;
  const bridge = `${BRIDGE_PREFIX}${id}`;
  if (bridge.length > 15) throw new Error("createNetnsLan: pid too long for interface names");
  if (lanNo > 1 && liveLans.size > 0) throw new Error("createNetnsLan: one LAN per process at a time");
  const prefix = await freePrefix();
  const bridgeAddr = `${prefix}.1`;
  const nsNames: string[] = [];
  const vethNames: string[] = [];
  const children = new Set<ChildProcess>();

  const destroySync = (): void => {
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(c.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
    for (const ns of nsNames) deleteNamespaceSync(ns);
    for (const v of vethNames) trySync("ip", ["link", "del", v]);
    trySync("ip", ["link", "del", bridge]);
  };
  liveLans.add(destroySync);
  if (!hookInstalled) {
    hookInstalled = true;
    process.on("exit", () => {
      for (const d of liveLans) d();
      liveLans.clear();
    });
    for (const [sig, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]] as const) {
      if (process.listenerCount(sig) === 0) process.once(sig, () => process.exit(code));
    }
  }

  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    const exits: Promise<unknown>[] = [];
    for (const c of children) {
      if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) continue;
      exits.push(new Promise((resolve) => c.once("exit", resolve)));
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000))]);
    destroySync();
    liveLans.delete(destroySync);
  };

  try {
    await run("ip", ["link", "add", bridge, "type", "bridge"]);
    await run("ip", ["addr", "add", `${bridgeAddr}/24`, "dev", bridge]);
    await run("ip", ["link", "set", bridge, "up"]);
    const out: NetnsLanMember[] = [];
    for (let k = 0; k < members.length; k++) {
      const spec = members[k]!;
      const name = `shoalns-${id}-${1000 * lanNo + k}`;
      const hostIf = `shl${id}v${k}`;
      const nsIf = "lan0";
      const nsAddr = `${prefix}.${k + 2}`;
      await run("ip", ["netns", "add", name]);
      nsNames.push(name);
      await run("ip", ["link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", name]);
      vethNames.push(hostIf);
      await run("ip", ["link", "set", hostIf, "master", bridge]);
      await run("ip", ["link", "set", hostIf, "up"]);
      const inNs = (...args: string[]) => run("ip", ["netns", "exec", name, ...args]);
      await inNs("ip", "link", "set", "lo", "up");
      await inNs("ip", "addr", "add", `${nsAddr}/24`, "dev", nsIf);
      await inNs("ip", "link", "set", nsIf, "up");
      await run("tc", tbfArgs(hostIf, spec.rateMbit));
      await inNs("tc", ...tbfArgs(nsIf, spec.rateMbit));
      const runners = namespaceRunners(name, () => destroyed, (child) => {
        children.add(child);
        child.once("exit", () => children.delete(child));
      });
      out.push({
        name,
        nsAddr,
        hostAddr: bridgeAddr,
        hostIf,
        nsIf,
        rateMbit: spec.rateMbit,
        get destroyed() {
          return destroyed;
        },
        ...runners,
        destroy,
      });
    }
    return { bridge, prefix, bridgeAddr, members: out, destroy };
  } catch (err) {
    destroyed = true;
    destroySync();
    liveLans.delete(destroySync);
    throw err;
  }
}
