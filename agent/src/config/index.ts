// The settings schemas of `shoal agent` and `shoal fuse-keeper` (no daemon code: the CLI loads this for --help).
export { AGENT_SETTINGS, type AgentConfig } from "./agent-config.ts";
export { KEEPER_SETTINGS, type KeeperConfig } from "./keeper-config.ts";
