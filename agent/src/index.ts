// Public surface of @shoal/agent: the per-host daemon. Its client is `@shoal/agent/client`, its settings `@shoal/agent/config`.
export { createAgent, type Agent, type AgentStatus } from "./daemon/agent.ts";
export type { MountResult, MountRecord } from "./daemon/mounts.ts";
