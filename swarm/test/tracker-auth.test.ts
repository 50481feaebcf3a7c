import { randomBytes } from "node:crypto";
import { BadRequestError } from "@shoal/base";
import { generateKeyPair } from "@libp2p/crypto/keys";
import { peerIdFromPrivateKey } from "@libp2p/peer-id";
import { describe, expect, it } from "vitest";
import { ed25519PeerId, NotSwarmMemberError, openTrackerMessage, sealTrackerMessage, TRACKER_MAX_SKEW_MS, trackerMembershipKey } from "../src/index.ts";
import { testPeerIdentity } from "../testsuite/index.ts";

const L1 = `sha256:${"1".repeat(64)}`;
const psk = randomBytes(32);
const key = trackerMembershipKey(psk);

describe("sealed tracker messages", () => {
  it("opens what a member sealed in its own name, with a libp2p key as with a node:crypto one", async () => {
    const libp2pKey = await generateKeyPair("Ed25519");
    const libp2p = { peerId: peerIdFromPrivateKey(libp2pKey).toString(), sign: (d: Uint8Array) => libp2pKey.sign(d) };
    expect(ed25519PeerId(libp2pKey.publicKey.raw)).toBe(libp2p.peerId);
    for (const signer of [libp2p, testPeerIdentity()]) {
      const env = await sealTrackerMessage("announce", { peerId: signer.peerId, addrs: ["/ip4/127.0.0.1/tcp/1"], layers: [L1] }, signer, key);
      const opened = openTrackerMessage(JSON.parse(JSON.stringify(env)), "announce", key);
      expect(opened).toMatchObject({ peerId: signer.peerId, addrs: ["/ip4/127.0.0.1/tcp/1"], layers: [L1] });
      expect(opened.ts).toBeTypeOf("number");
    }
  });

  it("refuses another swarm, another author, a changed payload, another route, a stale time and non-Ed25519 IDs", async () => {
    const me = testPeerIdentity();
    const other = testPeerIdentity();
    const fields = { peerId: me.peerId, addrs: [], layers: [L1] };
    const env = await sealTrackerMessage("announce", fields, me, key);
    const refused = (body: unknown, k: Uint8Array = key, kind: "announce" | "report" = "announce", now?: number) => {
      try {
        openTrackerMessage(body, kind, k, now);
      } catch (err) {
        return err instanceof NotSwarmMemberError ? err.code : `${(err as Error).name}`;
      }
      return "accepted";
    };
    expect(refused(env)).toBe("accepted");
    expect(refused(env, trackerMembershipKey(randomBytes(32)))).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    // signed by `other` in `me`'s name
    expect(refused(await sealTrackerMessage("announce", fields, { peerId: me.peerId, sign: other.sign }, key))).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    expect(refused({ ...env, signed: env.signed.replace(L1, `sha256:${"2".repeat(64)}`) })).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    expect(refused(env, key, "report")).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    expect(refused(env, key, "announce", Date.now() + TRACKER_MAX_SKEW_MS + 10_000)).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    for (const peerId of ["QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N", "not-base58-0OIl", ""]) {
      expect(refused(await sealTrackerMessage("announce", { ...fields, peerId }, me, key)), peerId).toBe("SHOAL_ERR_NOT_SWARM_MEMBER");
    }
  });

  it("refuses malformed envelopes as bad requests", () => {
    for (const body of [null, [], "x", { signed: 1, sig: "", member: "" }, { signed: "{", sig: "", member: "" }, { signed: "[]", sig: "", member: "" }, { signed: JSON.stringify({ kind: "announce", ts: "now" }), sig: "", member: "" }]) {
      expect(() => openTrackerMessage(body, "announce", key), JSON.stringify(body)).toThrow(BadRequestError);
    }
  });
});
