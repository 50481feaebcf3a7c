// Test helpers of @shoal/swarm, for the tests of every package that talks to a tracker.
export { testPeerIdentity, sealForTest } from "./tracker-identity.ts";
