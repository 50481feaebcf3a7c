import { InvalidArgumentError } from "@shoal/base";
/** Growable byte buffer writing LEB128 varints, used by the index encoder. */
export class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Unsigned integer up to Number.MAX_SAFE_INTEGER. */
  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(`not an unsigned safe integer: ${v}`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.len++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.len++] = v;
  }

  /** Signed integer (zigzag). */
  int(v: number): void {
    this.uint(v < 0 ? -2 * v - 1 : 2 * v);
  }

  byte(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Length-prefixed bytes. */
  blob(b: Uint8Array): void {
    this.uint(b.length);
    this.bytes(b);
  }

  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.len));
  }
}

/** Cursor over a byte buffer reading what `ByteWriter` wrote; `fail` builds the error for malformed input. */
export class ByteReader {
  pos = 0;
  readonly buf: Buffer;
  private readonly fail: (message: string) => Error;

  constructor(buf: Buffer, fail: (message: string) => Error) {
    this.buf = buf;
    this.fail = fail;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  uint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.buf.length) throw this.fail("index truncated");
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw this.fail("index number out of range");
        return v;
      }
      mul *= 0x80;
    }
    throw this.fail("index varint too long");
  }

  int(): number {
    const z = this.uint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  byte(): number {
    if (this.pos >= this.buf.length) throw this.fail("index truncated");
    return this.buf[this.pos++]!;
  }

  bytes(n: number): Buffer {
    if (n > this.remaining) throw this.fail("index truncated");
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  blob(): Buffer {
    return this.bytes(this.uint());
  }

  /** Length-prefixed UTF-8 string. */
  string(): string {
    const n = this.uint();
    if (n > this.remaining) throw this.fail("index truncated");
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
}
