/**
 * A client of the image service of Kubernetes' CRI, on containerd's socket:
 * what `shoal pull` speaks, as kubelet and crictl do, so that a pull through
 * it is the pull a Kubernetes node makes (containerd resolves, fetches the
 * manifest and config, and unpacks through the configured snapshotter, with
 * the CRI labels that let a remote snapshotter mount each layer lazily).
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { GRPC_CODES, ShoalError, type GrpcStatusName } from "@shoal/base";

const PROTO_DIR = fileURLToPath(new URL("../proto", import.meta.url));
const NAMES = Object.fromEntries(Object.entries(GRPC_CODES).map(([k, v]) => [v, k])) as Record<number, GrpcStatusName>;

/** A CRI call containerd refused; `status` is its gRPC status name. */
export class CriCallError extends ShoalError {
  readonly status: GrpcStatusName;
  constructor(status: GrpcStatusName, message: string) {
    super(status === "UNAVAILABLE" ? "SHOAL_ERR_CONTAINERD_UNAVAILABLE" : "SHOAL_ERR_CONTAINERD", `containerd (CRI): ${message}`);
    this.status = status;
  }
}

/** Registry credentials for a pull. Never logged. */
export interface CriAuth {
  username: string;
  password: string;
}

/** See the module comment. */
export class CriImages {
  readonly #client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
  readonly #address: string;

  constructor(init: { address: string }) {
    const def = protoLoader.loadSync("runtime/v1/images.proto", { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: { ImageService: grpc.ServiceClientConstructor } } };
    this.#address = init.address;
    this.#client = new pkg.runtime.v1.ImageService(`unix://${init.address}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 16 << 20,
    }) as never;
  }

  #call<T>(method: string, req: unknown, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      this.#client[method]!(req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        if (!err) return resolve(res);
        const status = NAMES[err.code] ?? "UNKNOWN";
        const why = status === "UNAVAILABLE" ? `nothing answers on ${this.#address} (${err.details || err.message}); is containerd running there?` : status === "UNIMPLEMENTED" ? `no CRI image service on ${this.#address}: enable containerd's CRI plugin` : err.details || err.message;
        reject(new CriCallError(status, why));
      });
    });
  }

  /** Pull `image` through containerd's CRI plugin; resolves the image reference containerd gives it (its digest). */
  async pull(image: string, opts: { auth?: CriAuth; timeoutMs?: number } = {}): Promise<string> {
    const res = await this.#call<{ image_ref: string }>("PullImage", { image: { image }, ...(opts.auth ? { auth: opts.auth } : {}) }, opts.timeoutMs ?? 30 * 60_000);
    return res.image_ref;
  }

  /** The image's id, tags and digests, or undefined when containerd does not have it. */
  async status(image: string): Promise<{ id: string; repo_tags: string[]; repo_digests: string[]; size: number } | undefined> {
    const res = await this.#call<{ image?: { id: string; repo_tags: string[]; repo_digests: string[]; size: number } | null }>("ImageStatus", { image: { image } }, 30_000);
    return res.image ?? undefined;
  }

  /** Remove the image (idempotent). */
  async remove(image: string): Promise<void> {
    await this.#call("RemoveImage", { image: { image } }, 60_000);
  }

  close(): void {
    this.#client.close();
  }
}
