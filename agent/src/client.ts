/**
 * The client of the agent's control API (JSON over HTTP on `ROOT/agent.sock`):
 * what the CLI, the benches and the demo call. Loading it loads nothing of
 * the daemon.
 */
import { isErrorCode, ShoalError } from "@shoal/base";
import type { StartupOrder } from "@shoal/blockindex";
import { request } from "node:http";
import { join, resolve } from "node:path";
import type { AgentStatus } from "./daemon/agent.ts";
import type { MountResult } from "./daemon/mounts.ts";

export type { AgentStatus, MountResult };

/** The agent could not be reached, or answered an error. */
export class AgentClientError extends ShoalError {}

/**
 * Call the agent's API on `ROOT/agent.sock`: `method path` with an optional
 * JSON body; resolves the JSON answer, rejects with the agent's typed error
 * code, or `SHOAL_ERR_AGENT_NOT_RUNNING` when nothing listens.
 */
export function callAgent<T>(root: string, method: string, path: string, body?: unknown, opts: { timeoutMs?: number } = {}): Promise<T> {
  const socketPath = join(root, "agent.sock");
  return new Promise<T>((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { "content-type": "application/json" }, timeout: opts.timeoutMs ?? 300_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => {
        let json: unknown;
        try {
          json = JSON.parse(Buffer.concat(parts).toString("utf8") || "{}");
        } catch {
          return reject(new AgentClientError("SHOAL_ERR_AGENT_PROTOCOL", `agent answered HTTP ${res.statusCode} with non-JSON`));
        }
        if (res.statusCode === 200) return resolve(json as T);
        const e = json as { code?: unknown; message?: unknown };
        const message = typeof e.message === "string" ? e.message : `agent answered HTTP ${res.statusCode}`;
        reject(new AgentClientError(isErrorCode(e.code) ? e.code : "SHOAL_ERR_AGENT_PROTOCOL", message));
      });
    });
    req.on("timeout", () => req.destroy(new AgentClientError("SHOAL_ERR_AGENT_UNAVAILABLE", "agent did not answer in time")));
    req.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT" || err.code === "ECONNREFUSED") {
        reject(new AgentClientError("SHOAL_ERR_AGENT_NOT_RUNNING", `no agent is running for root ${root} (nothing listens on ${socketPath}); start one with: shoal agent --root ${root}`));
      } else reject(new AgentClientError("SHOAL_ERR_AGENT_UNAVAILABLE", `cannot reach the agent at ${socketPath}: ${err.message}`, { cause: err }));
    });
    if (body !== undefined) req.write(JSON.stringify(body));
    req.end();
  });
}

/** A typed client of one agent, found by its root directory. */
export class AgentClient {
  readonly root: string;

  constructor(init: { root: string }) {
    this.root = init.root;
  }

  /** Images, mounts, bytes per source, prefetch progress. */
  status(): Promise<AgentStatus> {
    return callAgent<AgentStatus>(this.root, "GET", "/v1/status");
  }

  /** Mount `image` read-only and lazily at `mountpoint` (an existing empty directory; with `force`, a non-empty one). */
  mount(image: string, mountpoint: string, opts: { force?: boolean } = {}): Promise<MountResult> {
    return callAgent<MountResult>(this.root, "POST", "/v1/mounts", { image, mountpoint: resolve(mountpoint), ...(opts.force ? { force: true } : {}) });
  }

  /** Unmount a shoal mount. */
  async unmount(mountpoint: string): Promise<void> {
    await callAgent(this.root, "DELETE", `/v1/mounts?mountpoint=${encodeURIComponent(resolve(mountpoint))}`);
  }

  /** The chunks the image mounted at `mountpoint` read at startup. */
  startupOrder(mountpoint: string): Promise<StartupOrder> {
    return callAgent<StartupOrder>(this.root, "GET", `/v1/startup-order?mountpoint=${encodeURIComponent(resolve(mountpoint))}`);
  }
}
