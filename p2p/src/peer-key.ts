// Persistent libp2p identity: a private key stored once in a file so the peer id survives restarts.
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from "@libp2p/crypto/keys";
import type { PrivateKey } from "@libp2p/interface";
import { link, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { PeerKeyError } from "./errors.ts";

/**
 * Loads the Ed25519 private key stored (libp2p protobuf encoding) in `path`, creating it with mode
 * 0600 if missing. Creation is atomic and create-once: concurrent callers end up with the same key.
 * A file that does not decode throws PeerKeyError; it is never overwritten.
 */
export async function loadOrCreatePeerKey(path: string, options: { signal?: AbortSignal } = {}): Promise<PrivateKey> {
  const existing = await readKey(path, options.signal);
  if (existing) return existing;
  const key = await generateKeyPair("Ed25519");
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, privateKeyToProtobuf(key), { mode: 0o600, signal: options.signal });
  try {
    await link(tmp, path);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    const winner = await readKey(path, options.signal);
    if (!winner) throw new PeerKeyError(`peer key ${path} vanished while being created`, { cause: err });
    return winner;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function readKey(path: string, signal?: AbortSignal): Promise<PrivateKey | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path, { signal });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return privateKeyFromProtobuf(bytes);
  } catch (err) {
    throw new PeerKeyError(`peer key ${path} is not a libp2p private key`, { cause: err });
  }
}
