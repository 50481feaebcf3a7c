/** Peer identities for tests that talk to a tracker: an Ed25519 key made with node:crypto, its peer ID, and sealing in its name. */
import { generateKeyPairSync, sign } from "node:crypto";
import { ed25519PeerId, sealTrackerMessage, trackerMembershipKey, type TrackerEnvelope, type TrackerMessageKind, type TrackerSigner } from "../src/tracker-auth.ts";

/** A fresh peer identity: its peer ID and a signer in its name. */
export function testPeerIdentity(): TrackerSigner {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  return { peerId: ed25519PeerId(raw), sign: (data) => sign(null, data, privateKey) };
}

/** Seal `fields` for `kind` as `signer`, proving membership of the swarm whose pre-shared key is `psk`. */
export function sealForTest(kind: TrackerMessageKind, fields: object, signer: TrackerSigner, psk: Uint8Array, now?: number): Promise<TrackerEnvelope> {
  return sealTrackerMessage(kind, fields, signer, trackerMembershipKey(psk), now);
}
