/**
 * A client of the snapshots API over gRPC: of shoal's snapshotter socket,
 * or of containerd's own snapshots service (which proxies to any
 * snapshotter, by name, in a containerd namespace). Tests and conformance
 * suites use it; errors come back as `SnapshotsCallError` with the gRPC
 * status name.
 */
import * as grpc from "@grpc/grpc-js";
import { ShoalError, type GrpcStatusName, GRPC_CODES } from "@shoal/base";
import { snapshotsPackage } from "./grpc-server.ts";
import type { Mount, SnapshotInfo } from "./snapshotter.ts";
import type { SnapshotKind } from "./records.ts";

/** A snapshots call the server refused; `status` is its gRPC status name. */
export class SnapshotsCallError extends ShoalError {
  readonly status: GrpcStatusName;
  constructor(status: GrpcStatusName, message: string) {
    super("SHOAL_ERR_CONTAINERD", `snapshots API: ${status}: ${message}`);
    this.status = status;
  }
}

const NAMES = Object.fromEntries(Object.entries(GRPC_CODES).map(([k, v]) => [v, k])) as Record<number, GrpcStatusName>;
const KINDS: Record<string, SnapshotKind> = { VIEW: "view", ACTIVE: "active", COMMITTED: "committed" };

type WireInfo = { name: string; parent: string; kind: string; labels: Record<string, string>; created_at?: { seconds: number; nanos: number }; updated_at?: { seconds: number; nanos: number } };

function fromWire(i: WireInfo): SnapshotInfo {
  const ms = (t?: { seconds: number; nanos: number }) => (t ? t.seconds * 1000 + Math.floor(t.nanos / 1e6) : 0);
  return { name: i.name, parent: i.parent, kind: KINDS[i.kind] ?? "view", labels: i.labels ?? {}, created: ms(i.created_at), updated: ms(i.updated_at) };
}

/** See the module comment. `snapshotter` names the backend (containerd's service needs it; shoal's socket ignores it). */
export class SnapshotsClient {
  readonly #client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  readonly #snapshotter: string;
  readonly #meta: grpc.Metadata;

  constructor(init: { socket: string; snapshotter?: string; namespace?: string }) {
    const pkg = snapshotsPackage() as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } } };
    const Ctor = pkg.containerd.services.snapshots.v1.Snapshots;
    this.#client = new Ctor(`unix://${init.socket}`, grpc.credentials.createInsecure()) as never;
    this.#snapshotter = init.snapshotter ?? "shoal";
    this.#meta = new grpc.Metadata();
    this.#meta.set("containerd-namespace", init.namespace ?? "default");
  }

  #call<T>(method: string, req: Record<string, unknown>): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client[method]!({ snapshotter: this.#snapshotter, ...req }, this.#meta, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(new SnapshotsCallError(NAMES[err.code] ?? "UNKNOWN", err.details || err.message));
        else resolve(res);
      });
    });
  }

  async prepare(key: string, parent = "", labels: Record<string, string> = {}): Promise<Mount[]> {
    return (await this.#call<{ mounts: Mount[] }>("Prepare", { key, parent, labels })).mounts;
  }

  async view(key: string, parent = "", labels: Record<string, string> = {}): Promise<Mount[]> {
    return (await this.#call<{ mounts: Mount[] }>("View", { key, parent, labels })).mounts;
  }

  async mounts(key: string): Promise<Mount[]> {
    return (await this.#call<{ mounts: Mount[] }>("Mounts", { key })).mounts;
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    await this.#call("Commit", { name, key, labels });
  }

  async remove(key: string): Promise<void> {
    await this.#call("Remove", { key });
  }

  async stat(key: string): Promise<SnapshotInfo> {
    return fromWire((await this.#call<{ info: WireInfo }>("Stat", { key })).info);
  }

  async update(name: string, labels: Record<string, string>, paths: string[] = []): Promise<SnapshotInfo> {
    return fromWire((await this.#call<{ info: WireInfo }>("Update", { info: { name, labels }, update_mask: { paths } })).info);
  }

  list(filters: string[] = []): Promise<SnapshotInfo[]> {
    return new Promise((resolve, reject) => {
      const out: SnapshotInfo[] = [];
      const stream = this.#client.List!({ snapshotter: this.#snapshotter, filters }, this.#meta) as grpc.ClientReadableStream<{ info: WireInfo[] }>;
      stream.on("data", (m: { info: WireInfo[] }) => out.push(...m.info.map(fromWire)));
      stream.on("error", (err: grpc.ServiceError) => reject(new SnapshotsCallError(NAMES[err.code] ?? "UNKNOWN", err.details || err.message)));
      stream.on("end", () => resolve(out));
    });
  }

  async usage(key: string): Promise<{ size: number; inodes: number }> {
    return this.#call("Usage", { key });
  }

  async cleanup(): Promise<void> {
    await this.#call("Cleanup", {});
  }

  close(): void {
    this.#client.close();
  }
}
