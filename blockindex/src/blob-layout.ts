import { InvalidArgumentError } from "@shoal/base";
import { createHash } from "node:crypto";
import { LayerFormatError } from "./errors.ts";
import { extraMember, extraMemberSize, MAX_EXTRA_PAYLOAD, readExtraMembers } from "./gzip-member.ts";
import { LayerIndex } from "./layer-index.ts";

const FOOTER_MAGIC = Buffer.from("SHOALFT1");
const FOOTER_PAYLOAD = 32;
/** Size in bytes of the footer member that ends every lazy layer blob. */
export const FOOTER_SIZE = extraMemberSize(FOOTER_PAYLOAD);

/** Where a lazy layer's index lives in its blob. */
export interface IndexLocation {
  /** Blob offset of the first index member. */
  offset: number;
  /** Bytes of index members (the footer not included). */
  size: number;
}

/**
 * The index members and footer that follow the data members of a lazy
 * layer: `index` split over empty gzip members (subfield `SI`), then the
 * fixed-size footer member (subfield `SF`) locating them. `dataSize` is the
 * total size of the data members before them.
 */
export function encodeIndexTrailer(index: LayerIndex, dataSize: number): { bytes: Buffer; location: IndexLocation; digest: string } {
  const payload = index.encode();
  const members: Buffer[] = [];
  for (let off = 0; off < payload.length || off === 0; off += MAX_EXTRA_PAYLOAD) {
    members.push(extraMember("S", "I", payload.subarray(off, off + MAX_EXTRA_PAYLOAD)));
    if (payload.length === 0) break;
  }
  const indexBytes = Buffer.concat(members);
  const footer = Buffer.alloc(FOOTER_PAYLOAD);
  FOOTER_MAGIC.copy(footer, 0);
  footer.writeBigUInt64BE(BigInt(dataSize), 8);
  footer.writeBigUInt64BE(BigInt(indexBytes.length), 16);
  return {
    bytes: Buffer.concat([indexBytes, extraMember("S", "F", footer)]),
    location: { offset: dataSize, size: indexBytes.length },
    digest: `sha256:${createHash("sha256").update(indexBytes).digest("hex")}`,
  };
}

/**
 * Read the footer member (the last `FOOTER_SIZE` bytes of a lazy blob whose
 * total size is `blobSize`) and return where the index is. Throws
 * `LayerFormatError` (`SHOAL_ERR_NOT_CONVERTED`) when the blob has no shoal footer.
 */
export function decodeFooter(tail: Uint8Array, blobSize: number, layer?: string): IndexLocation {
  const at = blobSize - FOOTER_SIZE;
  let payload: Buffer;
  try {
    if (tail.length !== FOOTER_SIZE) throw new InvalidArgumentError(`footer must be ${FOOTER_SIZE} bytes, not ${tail.length}`);
    payload = readExtraMembers(tail, "S", "F", { layer, blobOffset: at });
  } catch (err) {
    throw new LayerFormatError("SHOAL_ERR_NOT_CONVERTED", "blob has no shoal footer: not a converted lazy layer", { layer, blobOffset: at }, { cause: err });
  }
  if (payload.length !== FOOTER_PAYLOAD || !payload.subarray(0, 8).equals(FOOTER_MAGIC)) {
    throw new LayerFormatError("SHOAL_ERR_NOT_CONVERTED", "blob has no shoal footer: not a converted lazy layer", { layer, blobOffset: at });
  }
  const offset = Number(payload.readBigUInt64BE(8));
  const size = Number(payload.readBigUInt64BE(16));
  if (offset + size !== at) {
    throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `footer places the index at ${offset}+${size}, which does not end at the footer`, { layer, blobOffset: at });
  }
  return { offset, size };
}

/**
 * Parse the index members fetched from a blob (`bytes` = blob bytes
 * `[location.offset, location.offset + location.size)`). When
 * `expectedDigest` is given, the bytes must hash to it (DigestMismatchError
 * otherwise). The index's chunk table must end where the index begins.
 */
export function decodeIndexMembers(bytes: Uint8Array, location: IndexLocation, opts: { layer?: string; expectedDigest?: string } = {}): LayerIndex {
  if (opts.expectedDigest) {
    const actual = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    if (actual !== opts.expectedDigest) {
      throw new LayerFormatError("SHOAL_ERR_DIGEST_MISMATCH", `index digest mismatch: expected ${opts.expectedDigest}, got ${actual}`, { layer: opts.layer, blobOffset: location.offset });
    }
  }
  const payload = readExtraMembers(bytes, "S", "I", { layer: opts.layer, blobOffset: location.offset });
  const index = LayerIndex.decode(payload, { layer: opts.layer });
  if (index.dataSize !== location.offset) {
    throw new LayerFormatError("SHOAL_ERR_BAD_INDEX", `chunk table covers ${index.dataSize} bytes but the index starts at ${location.offset}`, { layer: opts.layer });
  }
  return index;
}
