/**
 * The gRPC edge of the snapshotter: containerd's snapshots service
 * (`containerd.services.snapshots.v1.Snapshots`, plain gRPC) on a unix
 * socket, from the `.proto` files in `snapshotter/proto`. Requests are
 * translated to `Snapshotter` calls, and errors, once, to the gRPC status
 * the error set gives their code (containerd's errdefs read them back).
 */
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { grpcStatusOf, toShoalError } from "@shoal/base";
import type { Logger } from "pino";
import type { Mount, SnapshotInfo, Snapshotter } from "./snapshotter.ts";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));
const SERVICE_PROTO = "containerd/services/snapshots/v1/snapshots.proto";

/** Load the service definition (once per process). */
let loaded: grpc.GrpcObject | undefined;
export function snapshotsPackage(): grpc.GrpcObject {
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(SERVICE_PROTO, {
    includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
  }));
  return loaded;
}

/** The service object of `containerd.services.snapshots.v1.Snapshots`. */
export function snapshotsService(): grpc.ServiceDefinition {
  const pkg = snapshotsPackage() as unknown as { containerd: { services: { snapshots: { v1: { Snapshots: { service: grpc.ServiceDefinition } } } } } };
  return pkg.containerd.services.snapshots.v1.Snapshots.service;
}

const KIND = { view: "VIEW", active: "ACTIVE", committed: "COMMITTED" } as const;

function timestamp(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function info(i: SnapshotInfo) {
  return { name: i.name, parent: i.parent, kind: KIND[i.kind], created_at: timestamp(i.created), updated_at: timestamp(i.updated), labels: i.labels };
}

function mounts(ms: Mount[]) {
  return { mounts: ms.map((m) => ({ type: m.type, source: m.source, target: "", options: m.options })) };
}

type Req = Record<string, unknown> & { key?: string; parent?: string; name?: string; labels?: Record<string, string> };

/** A unary handler: `fn`'s result, or its error as a gRPC status. */
function unary(log: Logger, method: string, fn: (req: Req) => Promise<unknown>): grpc.handleUnaryCall<Req, unknown> {
  return (call, callback) => {
    fn(call.request).then((res) => callback(null, res), (err: unknown) => {
      const e = toShoalError(err);
      const status = grpcStatusOf(e);
      (status.name === "INTERNAL" ? log.error.bind(log) : log.debug.bind(log))({ method, key: call.request.key, code: e.code, err: e.message }, "snapshot call refused");
      callback({ code: status.code, details: `${e.message} [${e.code}]` });
    });
  };
}

/** The handlers of every RPC, over `snapshotter`. */
export function snapshotsHandlers(snapshotter: Snapshotter, logger: Logger): grpc.UntypedServiceImplementation {
  const log = logger.child({ component: "snapshots-api" });
  const empty = {};
  return {
    Prepare: unary(log, "Prepare", async (r) => mounts(await snapshotter.prepare(r.key ?? "", r.parent ?? "", r.labels))),
    View: unary(log, "View", async (r) => mounts(await snapshotter.view(r.key ?? "", r.parent ?? "", r.labels))),
    Mounts: unary(log, "Mounts", async (r) => mounts(await snapshotter.mounts(r.key ?? ""))),
    Commit: unary(log, "Commit", async (r) => {
      await snapshotter.commit(r.name ?? "", r.key ?? "", r.labels);
      return empty;
    }),
    Remove: unary(log, "Remove", async (r) => {
      await snapshotter.remove(r.key ?? "");
      return empty;
    }),
    Stat: unary(log, "Stat", async (r) => ({ info: info(await snapshotter.stat(r.key ?? "")) })),
    Update: unary(log, "Update", async (r) => {
      const i = (r.info ?? {}) as { name?: string; labels?: Record<string, string> };
      const paths = ((r.update_mask ?? {}) as { paths?: string[] }).paths ?? [];
      return { info: info(await snapshotter.update({ name: i.name ?? "", labels: i.labels ?? {} }, paths)) };
    }),
    List: (call: grpc.ServerWritableStream<Req, unknown>) => {
      snapshotter.list((call.request.filters as string[] | undefined) ?? []).then((all) => {
        // containerd reads a stream of batches; 100 infos a message keeps each small
        for (let i = 0; i < all.length; i += 100) call.write({ info: all.slice(i, i + 100).map(info) });
        call.end();
      }, (err: unknown) => {
        const e = toShoalError(err);
        call.emit("error", { code: grpcStatusOf(e).code, details: `${e.message} [${e.code}]` });
      });
    },
    Usage: unary(log, "Usage", async (r) => snapshotter.usage(r.key ?? "")),
    Cleanup: unary(log, "Cleanup", async () => {
      await snapshotter.cleanup();
      return empty;
    }),
  };
}

/** A running snapshots server. */
export interface SnapshotsServer {
  readonly socket: string;
  close(): Promise<void>;
}

/** Serve `snapshotter` on the unix socket `socket` (a stale socket file there is removed first). */
export async function serveSnapshots(snapshotter: Snapshotter, socket: string, logger: Logger): Promise<SnapshotsServer> {
  const server = new grpc.Server();
  server.addService(snapshotsService(), snapshotsHandlers(snapshotter, logger));
  await rm(socket, { force: true });
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
  return {
    socket,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => server.forceShutdown(), 2000).unref();
    }),
  };
}
