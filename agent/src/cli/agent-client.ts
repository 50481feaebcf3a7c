import { isErrorCode, ShoalError } from "@shoal/base";
import { request } from "node:http";
import { join } from "node:path";

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
