/**
 * A gzip inflater of our own that knows where it is: it inflates a gzip
 * stream (one member or several), pushed in pieces of any size, and at each
 * deflate block boundary it can report the exact compressed **bit** offset,
 * the uncompressed offset and the 32 KiB window before it. That is what a
 * seekable index of an ordinary gzip layer needs and what Node's zlib does
 * not expose (no `Z_BLOCK` state, no `inflatePrime`).
 *
 * Memory is bounded: the input kept between pushes is at most the piece
 * pushed plus `LOOKAHEAD` bytes, and the output buffer is the 32 KiB window
 * plus `OUT_CHUNK`. Output is handed to `onData` in views that are valid only
 * during the call. The hot loop keeps its bit buffer in locals; a push ends
 * only between symbols, with at least `LOOKAHEAD` bytes ahead unless the
 * input is final, so no symbol ever straddles a push.
 */
import { crc32 } from "node:zlib";
import { LayerFormatError } from "../errors.ts";

/** Deflate's window: the most a back-reference reaches. */
const WINDOW_BYTES = 32 * 1024;
/** Input kept ahead of the decoder before it suspends (a dynamic block header is at most ~290 bytes; a symbol at most 8). */
const LOOKAHEAD = 1024;
/** Output bytes collected past the window before they are handed on. */
const OUT_CHUNK = 512 * 1024;
/** Zero bytes after the input, so that reads just past its end stay in the array. */
const PAD = 16;
/** The longest match deflate emits. */
const MAX_MATCH = 258;

const LEN_BASE = Uint16Array.from([3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]);
const LEN_EXTRA = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]);
const DIST_BASE = Uint16Array.from([1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]);
const DIST_EXTRA = Uint8Array.from([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]);
const CODE_LENGTH_ORDER = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/**
 * A decoding table, indexed by the next `bits` input bits: entry =
 * symbol << 4 | code length for codes of at most `bits` bits (0: no such
 * code); for longer codes a link, offset << 8 | subtable bits << 4 (low 4
 * bits 0), to a subtable indexed by the bits after the first `bits`.
 */
interface Huffman {
  table: Int32Array;
  bits: number;
}

/** Bits of a table's first level: small enough to stay in the L1 cache. */
const PRIMARY_BITS = 10;

/** Room for the largest table: a first level and one subtable per first-level entry. */
const SCRATCH = new Int32Array((1 << PRIMARY_BITS) * (1 + (1 << (15 - PRIMARY_BITS))));

/** The canonical Huffman code of `lengths` as a two-level table; throws on an over-subscribed code. */
function huffman(lengths: Uint8Array, n: number): Huffman {
  const count = new Uint16Array(16);
  let maxLen = 0;
  for (let s = 0; s < n; s++) {
    const l = lengths[s]!;
    count[l]!++;
    if (l > maxLen) maxLen = l;
  }
  count[0] = 0;
  let left = 1;
  for (let l = 1; l <= 15; l++) {
    left = (left << 1) - count[l]!;
    if (left < 0) throw corrupt("over-subscribed Huffman code");
  }
  const next = new Uint16Array(16);
  for (let l = 1, code = 0; l <= 15; l++) {
    code = (code + count[l - 1]!) << 1;
    next[l] = code;
  }
  const bits = Math.max(1, Math.min(maxLen, PRIMARY_BITS));
  const subBits = Math.max(0, maxLen - bits);
  // built in the scratch table, then copied at its used size (zeroing a worst-case table per block costs more than decoding it)
  const table = SCRATCH;
  table.fill(0, 0, 1 << bits);
  let used = 1 << bits;
  for (let s = 0; s < n; s++) {
    const l = lengths[s]!;
    if (l === 0) continue;
    let code = next[l]!++;
    let rev = 0;
    for (let i = 0; i < l; i++) {
      rev = (rev << 1) | (code & 1);
      code >>= 1;
    }
    const entry = (s << 4) | l;
    if (l <= bits) {
      for (let i = rev; i < 1 << bits; i += 1 << l) table[i] = entry;
      continue;
    }
    const prefix = rev & ((1 << bits) - 1);
    let link = table[prefix]!;
    if (link === 0) {
      link = (used << 8) | (subBits << 4);
      table[prefix] = link;
      table.fill(0, used, used + (1 << subBits));
      used += 1 << subBits;
    }
    const base = link >>> 8;
    for (let i = rev >>> bits; i < 1 << subBits; i += 1 << (l - bits)) table[base + i] = entry;
  }
  return { table: table.slice(0, used), bits };
}

const FIXED_LIT = (() => {
  const l = new Uint8Array(288);
  l.fill(8, 0, 144).fill(9, 144, 256).fill(7, 256, 280).fill(8, 280, 288);
  return huffman(l, 288);
})();
const FIXED_DIST = huffman(new Uint8Array(30).fill(5), 30);

function corrupt(what: string, blobOffset?: number): LayerFormatError {
  return new LayerFormatError("SHOAL_ERR_GZIP_CORRUPT", `gzip stream is corrupt: ${what}`, blobOffset !== undefined ? { blobOffset } : {});
}

/** A place where inflating can start again: the state of the stream at a deflate block boundary. */
export interface BlockBoundary {
  /** Offset in bits from the start of the compressed stream of the block's first bit. */
  bit: number;
  /** Uncompressed bytes before the block. */
  out: number;
  /** True for the first block of a gzip member (inflating cannot run across members). */
  memberStart: boolean;
}

/** What the scanner reports as it goes. */
export interface ScannerHandlers {
  /** Uncompressed bytes, in order; the view is valid only during the call. */
  onData(data: Uint8Array): void;
  /**
   * A block boundary where inflating can resume (every one but a stored
   * block starting mid-byte). Return true to take it as a checkpoint: then
   * `onCheckpoint` follows at once with the window (the up to 32 KiB before
   * it; fewer at the start of the stream).
   */
  onBoundary?(b: BlockBoundary): boolean;
  onCheckpoint?(b: BlockBoundary, window: Uint8Array): void;
  /** A stored (uncompressed) block starts here. */
  onStoredBlock?(b: BlockBoundary): void;
  /** A member's deflate data ended: its trailer starts at byte `byte`, after `out` uncompressed bytes in all. */
  onMemberEnd?(end: { byte: number; out: number }): void;
}

/** Where the decoder is. */
const Mode = { Header: 0, Block: 1, Codes: 2, Stored: 3, Trailer: 4, Done: 5 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** See the module comment. Push pieces with `push`, then call `end`. */
export class InflateScanner {
  readonly #h: ScannerHandlers;
  /** Unconsumed input; `#base` is the stream offset of its first byte. */
  #in: Uint8Array = new Uint8Array(PAD);
  #base = 0;
  #pos = 0;
  #bb = 0;
  #bc = 0;
  #mode: Mode = Mode.Header;
  #final = false;
  #lit: Huffman = FIXED_LIT;
  #dist: Huffman = FIXED_DIST;
  #stored = 0;
  readonly #out = new Uint8Array(WINDOW_BYTES + OUT_CHUNK + MAX_MATCH);
  #op = 0;
  /** Where in `#out` the bytes not yet handed on start. */
  #emitFrom = 0;
  /** Uncompressed bytes handed on (everything before `#out[#emitFrom]`). */
  #outTotal = 0;
  #crc = 0;
  #memberOut = 0;
  #members = 0;
  #memberStart = false;

  constructor(handlers: ScannerHandlers) {
    this.#h = handlers;
  }

  /** Inflate `piece`, the next bytes of the stream. */
  push(piece: Uint8Array): void {
    if (this.#mode === Mode.Done) {
      if (piece.some((b) => b !== 0)) throw corrupt("bytes after the last gzip member");
      return;
    }
    // whole bytes still in the bit buffer go back to the input, so that the bytes a stored
    // block's header gives back are always in the array kept (at most 7 bits stay behind)
    this.#pos -= this.#bc >> 3;
    this.#bc &= 7;
    this.#bb &= (1 << this.#bc) - 1;
    const rest = this.#in.subarray(this.#pos, Math.max(this.#pos, this.#in.length - PAD));
    // zero padding past the end: a final symbol's look-ahead reads never leave the array
    const joined = new Uint8Array(rest.length + piece.length + PAD);
    joined.set(rest, 0);
    joined.set(piece, rest.length);
    this.#base += this.#pos;
    this.#in = joined;
    this.#pos = 0;
    this.#run(false);
  }

  /** The stream has ended: inflate what is left; throws unless it ended with a complete gzip member. */
  end(): void {
    if (this.#mode !== Mode.Done) this.#run(true);
    if (this.#mode !== Mode.Header && this.#mode !== Mode.Done) throw corrupt("stream truncated", this.#base + this.#pos);
    if (this.#members === 0) throw corrupt("no gzip member");
    this.#flush();
  }

  /** Hand on the output collected past the window, keeping the last 32 KiB. */
  #flush(): void {
    const out = this.#out;
    if (this.#op > this.#emitFrom) {
      const data = out.subarray(this.#emitFrom, this.#op);
      this.#crc = crc32(data, this.#crc);
      this.#memberOut += data.length;
      this.#h.onData(data);
    }
    this.#outTotal += this.#op - this.#emitFrom;
    const keep = Math.min(WINDOW_BYTES, this.#op);
    out.copyWithin(0, this.#op - keep, this.#op);
    this.#op = keep;
    this.#emitFrom = keep;
  }

  #run(final: boolean): void {
    const input = this.#in;
    const len = input.length - PAD;
    /** Past this input position the decoder suspends for more (reads past `len` give 0 bits and are checked after). */
    const limit = final ? len : len - LOOKAHEAD;
    const out = this.#out;
    let pos = this.#pos;
    let bb = this.#bb;
    let bc = this.#bc;
    let op = this.#op;
    // (no closures over these: captured variables would live in a context object, not registers)
    for (;;) {
      switch (this.#mode) {
        case Mode.Header: {
          if (pos >= len) return this.#save(pos, bb, bc, op);
          const end = gzipHeaderEnd(input, pos, len);
          if (end < 0) {
            if (final) throw corrupt("truncated gzip header", this.#base + pos);
            return this.#save(pos, bb, bc, op);
          }
          pos = end;
          bb = 0;
          bc = 0;
          this.#crc = 0;
          this.#memberOut = 0;
          this.#members++;
          this.#memberStart = true;
          this.#mode = Mode.Block;
          break;
        }
        case Mode.Block: {
          if (pos > limit) return this.#save(pos, bb, bc, op);
          const boundary = { bit: (this.#base + pos) * 8 - bc, out: this.#outTotal + (op - this.#emitFrom), memberStart: this.#memberStart };
          this.#memberStart = false;
          while (bc < 3) {
            bb |= input[pos++]! << bc;
            bc += 8;
          }
          // A stored block that starts mid-byte cannot be resumed by shifting the bytes (its
          // padding to a byte boundary would move), so it is not offered as a checkpoint.
          const stored = ((bb >>> 1) & 3) === 0;
          if (stored) this.#h.onStoredBlock?.(boundary);
          const resumable = !stored || boundary.bit % 8 === 0;
          if (resumable && this.#h.onBoundary?.(boundary)) {
            const from = Math.max(0, op - WINDOW_BYTES);
            this.#h.onCheckpoint!(boundary, out.slice(from, op));
          }
          this.#final = (bb & 1) === 1;
          const type = (bb >>> 1) & 3;
          bb >>>= 3;
          bc -= 3;
          if (type === 0) {
            bb >>>= bc & 7;
            bc -= bc & 7;
            // the rest of the bit buffer is whole bytes: give them back
            pos -= bc >> 3;
            bb = 0;
            bc = 0;
            if (pos + 4 > len) throw corrupt("truncated stored block", this.#base + pos);
            const n = input[pos]! | (input[pos + 1]! << 8);
            const nn = input[pos + 2]! | (input[pos + 3]! << 8);
            if ((n ^ 0xffff) !== nn) throw corrupt("stored block length check", this.#base + pos);
            pos += 4;
            this.#stored = n;
            this.#mode = Mode.Stored;
          } else if (type === 1) {
            this.#lit = FIXED_LIT;
            this.#dist = FIXED_DIST;
            this.#mode = Mode.Codes;
          } else if (type === 2) {
            while (bc < 14) {
              bb |= input[pos++]! << bc;
              bc += 8;
            }
            const nlen = (bb & 31) + 257;
            const ndist = ((bb >>> 5) & 31) + 1;
            const ncode = ((bb >>> 10) & 15) + 4;
            bb >>>= 14;
            bc -= 14;
            if (nlen > 286 || ndist > 30) throw corrupt("too many length or distance codes", this.#base + pos);
            const cl = new Uint8Array(19);
            for (let i = 0; i < ncode; i++) {
              while (bc < 3) {
                bb |= input[pos++]! << bc;
                bc += 8;
              }
              cl[CODE_LENGTH_ORDER[i]!] = bb & 7;
              bb >>>= 3;
              bc -= 3;
            }
            const clh = huffman(cl, 19);
            const lengths = new Uint8Array(nlen + ndist);
            for (let i = 0; i < nlen + ndist;) {
              while (bc < 14) {
                bb |= input[pos++]! << bc;
                bc += 8;
              }
              const e = clh.table[bb & ((1 << clh.bits) - 1)]!;
              const l = e & 15;
              if (l === 0) throw corrupt("bad code length code", this.#base + pos);
              bb >>>= l;
              bc -= l;
              const sym = e >>> 4;
              if (sym < 16) {
                lengths[i++] = sym;
                continue;
              }
              let repeat: number;
              let value = 0;
              if (sym === 16) {
                if (i === 0) throw corrupt("length repeat with no previous length", this.#base + pos);
                value = lengths[i - 1]!;
                repeat = 3 + (bb & 3);
                bb >>>= 2;
                bc -= 2;
              } else if (sym === 17) {
                repeat = 3 + (bb & 7);
                bb >>>= 3;
                bc -= 3;
              } else {
                repeat = 11 + (bb & 127);
                bb >>>= 7;
                bc -= 7;
              }
              if (i + repeat > nlen + ndist) throw corrupt("code lengths run past the table", this.#base + pos);
              lengths.fill(value, i, i + repeat);
              i += repeat;
            }
            if (lengths[256] === 0) throw corrupt("no end-of-block code", this.#base + pos);
            this.#lit = huffman(lengths.subarray(0, nlen), nlen);
            this.#dist = huffman(lengths.subarray(nlen), ndist);
            this.#mode = Mode.Codes;
          } else {
            throw corrupt("reserved block type", this.#base + pos);
          }
          if (pos - (bc >> 3) > len) throw corrupt("stream truncated in a block header", this.#base + len);
          break;
        }
        case Mode.Stored: {
          while (this.#stored > 0) {
            if (pos >= len) return this.#save(pos, bb, bc, op);
            if (op + 1 > out.length - MAX_MATCH) {
              this.#op = op;
              this.#flush();
              op = this.#op;
            }
            const n = Math.min(this.#stored, len - pos, out.length - MAX_MATCH - op);
            out.set(input.subarray(pos, pos + n), op);
            pos += n;
            op += n;
            this.#stored -= n;
          }
          this.#mode = this.#final ? Mode.Trailer : Mode.Block;
          break;
        }
        case Mode.Codes: {
          this.#save(pos, bb, bc, op);
          const done = this.#codes(input, len, limit);
          pos = this.#pos;
          bb = this.#bb;
          bc = this.#bc;
          op = this.#op;
          if (!done) return;
          this.#mode = this.#final ? Mode.Trailer : Mode.Block;
          break;
        }
        case Mode.Trailer: {
          // the rest of the bit buffer is whole bytes of the trailer: give them back
          bb >>>= bc & 7;
          bc -= bc & 7;
          pos -= bc >> 3;
          bb = 0;
          bc = 0;
          if (pos + 8 > len) {
            if (final) throw corrupt("truncated gzip trailer", this.#base + pos);
            return this.#save(pos, bb, bc, op);
          }
          // check the member's CRC-32 and length over what it produced
          this.#op = op;
          this.#checkMember(input, pos);
          op = this.#op;
          this.#h.onMemberEnd?.({ byte: this.#base + pos, out: this.#outTotal });
          pos += 8;
          this.#mode = Mode.Header;
          if (final && input.subarray(pos).every((b) => b === 0)) {
            pos = len;
            this.#mode = Mode.Done;
            return this.#save(pos, bb, bc, op);
          }
          break;
        }
        case Mode.Done:
          return this.#save(pos, bb, bc, op);
      }
    }
  }

  /**
   * Decode the symbols of the current block (its tables set) into the output
   * until its end-of-block code (true) or until the input runs short of the
   * look-ahead (false). Apart from `#run` so that V8 optimises this loop on
   * its own; registers come and go through the fields.
   */
  #codes(input: Uint8Array, len: number, limit: number): boolean {
    const out = this.#out;
    let pos = this.#pos;
    let bb = this.#bb;
    let bc = this.#bc;
    let op = this.#op;
    const lt = this.#lit.table;
    const lbits = this.#lit.bits;
    const lmask = (1 << lbits) - 1;
    const dt = this.#dist.table;
    const dbits = this.#dist.bits;
    const dmask = (1 << dbits) - 1;
    const room = out.length - MAX_MATCH;
    // a match may reach back over this member's output only (a new member starts afresh)
    let floor = Math.max(0, this.#emitFrom - this.#memberOut);
    for (;;) {
      if (pos > limit) {
        this.#save(pos, bb, bc, op);
        return false;
      }
      if (op >= room) {
        this.#op = op;
        this.#flush();
        op = this.#op;
        floor = Math.max(0, this.#emitFrom - this.#memberOut);
      }
      if (bc < 15) {
        // two bytes at once: bc < 15, so the buffer stays within 31 bits
        bb |= (input[pos]! | (input[pos + 1]! << 8)) << bc;
        pos += 2;
        bc += 16;
      }
      let e = lt[bb & lmask]!;
      let l = e & 15;
      if (l === 0) {
        // a long code: its subtable (or no code at all)
        if (e !== 0) e = lt[(e >>> 8) + ((bb >>> lbits) & ((1 << ((e >>> 4) & 15)) - 1))]!;
        l = e & 15;
        if (l === 0) throw corrupt("bad literal/length code", this.#base + pos);
      }
      bb >>>= l;
      bc -= l;
      let sym = e >>> 4;
      if (sym < 256) {
        out[op++] = sym;
        continue;
      }
      if (sym === 256) break;
      sym -= 257;
      if (sym >= 29) throw corrupt("bad length symbol", this.#base + pos);
      let length = LEN_BASE[sym]!;
      const lx = LEN_EXTRA[sym]!;
      if (lx > 0) {
        while (bc < lx) {
          bb |= input[pos++]! << bc;
          bc += 8;
        }
        length += bb & ((1 << lx) - 1);
        bb >>>= lx;
        bc -= lx;
      }
      if (bc < 15) {
        // two bytes at once: bc < 15, so the buffer stays within 31 bits
        bb |= (input[pos]! | (input[pos + 1]! << 8)) << bc;
        pos += 2;
        bc += 16;
      }
      e = dt[bb & dmask]!;
      l = e & 15;
      if (l === 0) {
        if (e !== 0) e = dt[(e >>> 8) + ((bb >>> dbits) & ((1 << ((e >>> 4) & 15)) - 1))]!;
        l = e & 15;
        if (l === 0) throw corrupt("bad distance code", this.#base + pos);
      }
      bb >>>= l;
      bc -= l;
      sym = e >>> 4;
      if (sym >= 30) throw corrupt("bad distance symbol", this.#base + pos);
      let dist = DIST_BASE[sym]!;
      const dx = DIST_EXTRA[sym]!;
      if (dx > 0) {
        while (bc < dx) {
          bb |= input[pos++]! << bc;
          bc += 8;
        }
        dist += bb & ((1 << dx) - 1);
        bb >>>= dx;
        bc -= dx;
      }
      if (dist > op - floor) throw corrupt("distance too far back", this.#base + pos);
      let from = op - dist;
      if (length > 32 && dist >= length) {
        out.copyWithin(op, from, from + length);
        op += length;
      } else {
        for (const stop = op + length; op < stop;) out[op++] = out[from++]!;
      }
    }
    if (pos - (bc >> 3) > len) throw corrupt("stream truncated in a block", this.#base + len);
    this.#save(pos, bb, bc, op);
    return true;
  }

  /** Keep the decoder's registers until the next push; returns nothing. */
  #save(pos: number, bb: number, bc: number, op: number): void {
    this.#pos = pos;
    this.#bb = bb;
    this.#bc = bc;
    this.#op = op;
  }

  /** At a member's trailer (at `pos`): everything it produced handed on, its CRC-32 and length checked. */
  #checkMember(input: Uint8Array, pos: number): void {
    this.#flush();
    const crc = (input[pos]! | (input[pos + 1]! << 8) | (input[pos + 2]! << 16) | (input[pos + 3]! << 24)) >>> 0;
    const size = (input[pos + 4]! | (input[pos + 5]! << 8) | (input[pos + 6]! << 16) | (input[pos + 7]! << 24)) >>> 0;
    if (crc !== this.#crc >>> 0) throw corrupt("CRC-32 mismatch", this.#base + pos);
    if (size !== this.#memberOut % 2 ** 32) throw corrupt("length mismatch", this.#base + pos);
  }
}

/** Where the deflate data of the gzip member starting at `pos` begins, or -1 when `buf` does not yet hold its whole header. */
function gzipHeaderEnd(buf: Uint8Array, pos: number, len: number): number {
  if (pos + 10 > len) return -1;
  if (buf[pos] !== 0x1f || buf[pos + 1] !== 0x8b) throw corrupt("not a gzip member (bad magic)", pos);
  if (buf[pos + 2] !== 8) throw corrupt("gzip member not deflate-compressed", pos);
  const flags = buf[pos + 3]!;
  let p = pos + 10;
  if (flags & 4) {
    if (p + 2 > len) return -1;
    p += 2 + (buf[p]! | (buf[p + 1]! << 8));
  }
  for (const bit of [8, 16]) {
    if (!(flags & bit)) continue;
    while (p < len && buf[p] !== 0) p++;
    if (p >= len) return -1;
    p++;
  }
  if (flags & 2) p += 2;
  return p > len ? -1 : p;
}

