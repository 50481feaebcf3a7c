/**
 * A client of the runtime service of Kubernetes' CRI on containerd's socket,
 * for tests that run a pod as kubelet would (there is no crictl in Debian 12):
 * a sandbox, a container in it, its status and its log. Pods use the host's
 * network namespace, so no CNI plugin is needed.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));

/** What a test sets of a container (`ContainerConfig`). */
export interface CriContainerSpec {
  name: string;
  image: string;
  command: string[];
  args?: string[];
  /** Relative to the pod's log directory. */
  logPath: string;
}

/** A container's status as CRI reports it. */
export interface CriContainerStatus {
  state: "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";
  exit_code: number;
  reason: string;
  message: string;
  log_path: string;
  image_ref: string;
}

/** See the module comment. */
export class CriRuntime {
  readonly #client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

  constructor(address: string) {
    const def = protoLoader.loadSync("runtime/v1/runtime.proto", { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { RuntimeService: grpc.ServiceClientConstructor } } };
    this.#client = new pkg.runtime.v1.RuntimeService(`unix://${address}`, grpc.credentials.createInsecure()) as never;
  }

  #call<T>(method: string, req: unknown, timeoutMs = 120_000): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client[method]!(req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        if (err) reject(new Error(`CRI ${method}: ${err.details || err.message} (gRPC ${err.code})`));
        else resolve(res);
      });
    });
  }

  /** The sandbox config of a pod on the host's network, logging to `logDirectory`. */
  static podConfig(name: string, logDirectory: string): Record<string, unknown> {
    return {
      metadata: { name, uid: `${name}-uid`, namespace: "default", attempt: 0 },
      log_directory: logDirectory,
      linux: { security_context: { namespace_options: { network: "NODE", pid: "POD", ipc: "POD" } } },
    };
  }

  /** Run a pod sandbox; resolves its id. */
  async runPod(config: Record<string, unknown>): Promise<string> {
    return (await this.#call<{ pod_sandbox_id: string }>("RunPodSandbox", { config })).pod_sandbox_id;
  }

  async podState(id: string): Promise<string> {
    return (await this.#call<{ status: { state: string } }>("PodSandboxStatus", { pod_sandbox_id: id })).status.state;
  }

  /** Stop and remove a pod with everything in it. */
  async removePod(id: string): Promise<void> {
    await this.#call("StopPodSandbox", { pod_sandbox_id: id });
    await this.#call("RemovePodSandbox", { pod_sandbox_id: id });
  }

  /** Create a container in pod `podId` (whose sandbox config was `podConfig`); resolves its id. */
  async createContainer(podId: string, podConfig: Record<string, unknown>, spec: CriContainerSpec): Promise<string> {
    const config = {
      metadata: { name: spec.name, attempt: 0 }, image: { image: spec.image }, command: spec.command, args: spec.args ?? [], log_path: spec.logPath,
      linux: { security_context: { namespace_options: { network: "NODE", pid: "CONTAINER", ipc: "POD" } } },
    };
    return (await this.#call<{ container_id: string }>("CreateContainer", { pod_sandbox_id: podId, config, sandbox_config: podConfig })).container_id;
  }

  async startContainer(id: string): Promise<void> {
    await this.#call("StartContainer", { container_id: id });
  }

  async containerStatus(id: string): Promise<CriContainerStatus> {
    return (await this.#call<{ status: CriContainerStatus }>("ContainerStatus", { container_id: id })).status;
  }

  async removeContainer(id: string): Promise<void> {
    await this.#call("RemoveContainer", { container_id: id });
  }

  close(): void {
    this.#client.close();
  }
}
