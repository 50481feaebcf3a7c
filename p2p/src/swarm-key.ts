// The libp2p private-network key file (`swarm.key`), as used by go-ipfs/kubo and js-libp2p pnet:
//   /key/swarm/psk/1.0.0/\n/base16/\n<64 hex digits>\n
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { SwarmKeyError } from "./errors.ts";

const HEADER = "/key/swarm/psk/1.0.0/";
const CODEC = "/base16/";
/** Length of the pre-shared key in bytes. */
export const SWARM_KEY_BYTES = 32;

/** A parsed swarm key. `psk` holds the 32 raw key bytes; never log it. */
export interface SwarmKey {
  readonly psk: Uint8Array;
}

/**
 * Parses the text of a `swarm.key` file. Accepts LF or CRLF line ends, a trailing newline and
 * upper- or lower-case hex; only the `/base16/` codec is supported (the one js-libp2p reads).
 * Throws SwarmKeyError on anything else.
 */
export function parseSwarmKey(text: string | Uint8Array): SwarmKey {
  const s = typeof text === "string" ? text : new TextDecoder("utf-8", { fatal: false }).decode(text);
  const lines = s.split(/\r?\n/);
  while (lines.length > 3 && lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== 3) throw new SwarmKeyError(`swarm key must have 3 lines, found ${lines.length}`);
  const [header, codec, hex] = lines as [string, string, string];
  if (header.trim() !== HEADER) throw new SwarmKeyError(`swarm key header must be ${HEADER}`);
  if (codec.trim() !== CODEC) throw new SwarmKeyError(`unsupported swarm key codec ${JSON.stringify(codec.trim())}; only ${CODEC}`);
  const h = hex.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(h)) throw new SwarmKeyError(`swarm key must be ${SWARM_KEY_BYTES * 2} hex digits`);
  return { psk: new Uint8Array(Buffer.from(h, "hex")) };
}

/** Formats a key as `swarm.key` file text (lower-case hex, trailing newline). */
export function formatSwarmKey(key: SwarmKey): string {
  if (key.psk.byteLength !== SWARM_KEY_BYTES) throw new SwarmKeyError(`swarm key must be ${SWARM_KEY_BYTES} bytes`);
  return `${HEADER}\n${CODEC}\n${Buffer.from(key.psk).toString("hex")}\n`;
}

/** Generates a fresh random swarm key from the system CSPRNG. */
export function generateSwarmKey(): SwarmKey {
  return { psk: new Uint8Array(randomBytes(SWARM_KEY_BYTES)) };
}

/**
 * Reads and parses a `swarm.key` file. A missing or unreadable file and a malformed one all
 * throw SwarmKeyError (the I/O error is the `cause`); an aborted signal rejects with its reason.
 */
export async function readSwarmKey(path: string, options: { signal?: AbortSignal } = {}): Promise<SwarmKey> {
  let text: string;
  try {
    text = await readFile(path, { encoding: "utf8", signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw new SwarmKeyError(`cannot read swarm key ${path}`, { cause: err });
  }
  try {
    return parseSwarmKey(text);
  } catch (err) {
    if (err instanceof SwarmKeyError) throw new SwarmKeyError(`${path}: ${err.message}`);
    throw err;
  }
}

/**
 * Normalises the accepted swarm key forms: a parsed SwarmKey, 32 raw key bytes, or the bytes of a
 * `swarm.key` file. Throws SwarmKeyError otherwise.
 */
export function toSwarmKey(key: SwarmKey | Uint8Array): SwarmKey {
  if (!(key instanceof Uint8Array)) {
    if (!(key.psk instanceof Uint8Array) || key.psk.byteLength !== SWARM_KEY_BYTES) {
      throw new SwarmKeyError(`swarm key must be ${SWARM_KEY_BYTES} bytes`);
    }
    return key;
  }
  if (key.byteLength === SWARM_KEY_BYTES) return { psk: new Uint8Array(key) };
  return parseSwarmKey(key);
}
