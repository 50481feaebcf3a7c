// The FUSE keeper: the process that holds the agent's FUSE connections across
// agent restarts, and the agent's side of it.
export { FuseKeeper, type FuseKeeperInit, type KeeperCounters } from "./keeper.ts";
export { KeeperMounter, type KeeperMounterInit } from "./keeper-mounter.ts";
