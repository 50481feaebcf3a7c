/**
 * Authenticated tracker messages. An announce or a report travels as an
 * envelope
 *
 *     { "signed": "<payload JSON>", "sig": "<base64>", "member": "<base64>" }
 *
 * where the payload is `{ "kind": "announce" | "report", "ts": <ms>, ...fields }`,
 * `sig` is the Ed25519 signature, by the libp2p key of the peer the payload
 * names as its author (an announce's `peerId`, a report's `reporter`), of
 * `DOMAIN + signed`, and `member` is an HMAC-SHA256 of the same bytes keyed
 * with a key derived from the swarm's pre-shared key. The signature proves the
 * author owns the peer ID it claims (nobody announces or reports in another
 * peer's name); the HMAC proves the author holds the swarm key (nobody outside
 * the swarm writes to the tracker at all); `ts` bounds replays.
 *
 * Only Ed25519 peer IDs (`12D3KooW…`, the key inlined in the ID) are accepted:
 * the supernode checks a signature without any lookup and without libp2p.
 */
import { createHash, createHmac, createPublicKey, timingSafeEqual, verify, type KeyObject } from "node:crypto";
import { BadRequestError, LruMap, ShoalError } from "@shoal/base";

/** What an envelope's payload is: the route it was signed for. */
export type TrackerMessageKind = "announce" | "report";

/** Signs tracker payloads in the name of one peer: a libp2p `PrivateKey` fits. */
export interface TrackerSigner {
  /** The peer ID (base58btc, Ed25519) the signatures are made in the name of. */
  readonly peerId: string;
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** An envelope as sent on the wire. */
export interface TrackerEnvelope {
  signed: string;
  sig: string;
  member: string;
}

/** How far a payload's `ts` may be from the supernode's clock, ms. */
export const TRACKER_MAX_SKEW_MS = 2 * 60_000;

const DOMAIN = new TextEncoder().encode("shoal-tracker/1\n");
const AUTHOR_FIELD: Record<TrackerMessageKind, string> = { announce: "peerId", report: "reporter" };

/** The key for `member` proofs, derived from the swarm's 32-byte pre-shared key (never the key itself on the wire). */
export function trackerMembershipKey(psk: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update("shoal tracker membership v1\0").update(psk).digest());
}

/** Seal `fields` (whose author field must be the signer's peer ID) into an envelope for `kind`. */
export async function sealTrackerMessage(kind: TrackerMessageKind, fields: object, signer: TrackerSigner, membershipKey: Uint8Array, now = Date.now()): Promise<TrackerEnvelope> {
  const signed = JSON.stringify({ ...fields, kind, ts: now });
  const data = signedBytes(signed);
  const sig = await signer.sign(data);
  return { signed, sig: Buffer.from(sig).toString("base64"), member: hmac(membershipKey, data).toString("base64") };
}

/** A tracker message that failed its authentication: 403 with SHOAL_ERR_NOT_SWARM_MEMBER. */
export class NotSwarmMemberError extends ShoalError {
  constructor(message: string) {
    super("SHOAL_ERR_NOT_SWARM_MEMBER", message);
  }
}

/**
 * Open an envelope (untrusted JSON) for `kind` and return its payload fields
 * (without `kind`; `ts` kept) once the signature, the membership proof under
 * `membershipKey` and the time check hold. A malformed envelope throws
 * `BadRequestError`; one that fails a check throws `NotSwarmMemberError`.
 */
export function openTrackerMessage(body: unknown, kind: TrackerMessageKind, membershipKey: Uint8Array, now = Date.now()): Record<string, unknown> & { ts: number } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new BadRequestError(`${kind}: body must be a signed JSON envelope`);
  const { signed, sig, member } = body as Record<string, unknown>;
  if (typeof signed !== "string" || typeof sig !== "string" || typeof member !== "string") {
    throw new BadRequestError(`${kind}: body must be a signed envelope {signed, sig, member}`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(signed);
  } catch (err) {
    throw new BadRequestError(`${kind}: signed payload is not JSON`, { cause: err });
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw new BadRequestError(`${kind}: signed payload must be a JSON object`);
  const { kind: k, ts, ...fields } = payload as Record<string, unknown>;
  if (k !== kind) throw new NotSwarmMemberError(`${kind}: the envelope was signed for ${JSON.stringify(k)}`);
  if (typeof ts !== "number" || !Number.isSafeInteger(ts)) throw new BadRequestError(`${kind}: ts must be an integer of ms since the epoch`);
  if (Math.abs(now - ts) > TRACKER_MAX_SKEW_MS) throw new NotSwarmMemberError(`${kind}: ts is more than ${TRACKER_MAX_SKEW_MS / 1000} s from the supernode's clock`);
  const author = fields[AUTHOR_FIELD[kind]];
  if (typeof author !== "string") throw new BadRequestError(`${kind}: ${AUTHOR_FIELD[kind]} must be a peer ID`);
  const data = signedBytes(signed);
  const proof = Buffer.from(member, "base64");
  const expected = hmac(membershipKey, data);
  if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) throw new NotSwarmMemberError(`${kind}: not from a member of this swarm (membership proof does not match the swarm key)`);
  if (!verify(null, data, ed25519Key(author, kind), Buffer.from(sig, "base64"))) throw new NotSwarmMemberError(`${kind}: signature does not match peer ${author.slice(0, 60)}`);
  return { ...fields, ts };
}

function signedBytes(signed: string): Buffer {
  return Buffer.concat([DOMAIN, Buffer.from(signed, "utf8")]);
}

function hmac(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** identity multihash (0x00, length 36) of the protobuf PublicKey { Type: Ed25519, Data: 32 bytes } */
const ED25519_PEER_ID_PREFIX = Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
/** DER SubjectPublicKeyInfo prefix of a raw Ed25519 public key. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/**
 * Public keys of the peers heard from lately: making a key object costs
 * more than the signature check itself (about half a millisecond of a
 * supernode's CPU per announce), and each peer of a fleet announces every
 * second while it streams. Only members reach here (the membership proof
 * is checked first); bounded above the tracker's default 10,000 peers.
 */
const KEYS = new LruMap<string, KeyObject>({ maxEntries: 20_000 });

/** The Ed25519 public key inlined in a base58btc peer ID; NotSwarmMemberError for any other ID. */
function ed25519Key(peerId: string, kind: TrackerMessageKind): KeyObject {
  const known = KEYS.get(peerId);
  if (known) return known;
  const bytes = decodeBase58(peerId);
  if (!bytes || bytes.length !== ED25519_PEER_ID_PREFIX.length + 32 || !bytes.subarray(0, ED25519_PEER_ID_PREFIX.length).equals(ED25519_PEER_ID_PREFIX)) {
    throw new NotSwarmMemberError(`${kind}: ${peerId.slice(0, 60)} is not an Ed25519 peer ID`);
  }
  const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, bytes.subarray(ED25519_PEER_ID_PREFIX.length)]), format: "der", type: "spki" });
  KEYS.set(peerId, key);
  return key;
}

/** The peer ID (base58btc identity multihash) of a raw 32-byte Ed25519 public key. */
export function ed25519PeerId(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new ShoalError("SHOAL_ERR_INVALID_ARGUMENT", "an Ed25519 public key is 32 bytes");
  return encodeBase58(Buffer.concat([ED25519_PEER_ID_PREFIX, publicKey]));
}

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function decodeBase58(s: string): Buffer | undefined {
  if (s.length === 0 || s.length > 128) return undefined;
  let n = 0n;
  for (const ch of s) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) return undefined;
    n = n * 58n + BigInt(v);
  }
  const hex = n === 0n ? "" : n.toString(16);
  const body = Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex");
  const zeros = s.length - s.replace(/^1+/, "").length;
  return Buffer.concat([Buffer.alloc(zeros), body]);
}

function encodeBase58(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString("hex") || "0"}`);
  let out = "";
  while (n > 0n) {
    out = ALPHABET[Number(n % 58n)]! + out;
    n /= 58n;
  }
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  return "1".repeat(zeros) + out;
}
