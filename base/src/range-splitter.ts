/**
 * Cuts a byte range into consecutive parts as it arrives: `push` each piece
 * with its offset in the range; `onPart(k, bytes)` hears of part `k` (the
 * bytes up to `ends[k]`, from `ends[k - 1]` or 0) once complete. A piece at
 * offset 0 after others (a retried request) starts over; parts already
 * heard of are not told twice; a piece that does not continue what came
 * before is ignored (whoever reads the whole range sees it).
 */
export class RangeSplitter {
  private readonly ends: readonly number[];
  private readonly onPart: (k: number, bytes: Uint8Array) => void;
  private parts: Uint8Array[] = [];
  /** Bytes received, where the part being assembled starts, its number, and how many parts were told. */
  private have = 0;
  private start = 0;
  private k = 0;
  private told = 0;

  constructor(ends: readonly number[], onPart: (k: number, bytes: Uint8Array) => void) {
    this.ends = ends;
    this.onPart = onPart;
  }

  push(piece: Uint8Array, at: number): void {
    if (at === 0 && this.have > 0) {
      this.parts = [];
      this.have = this.start = this.k = 0;
    }
    if (at !== this.have) return;
    this.parts.push(piece);
    this.have += piece.length;
    while (this.k < this.ends.length && this.have >= this.ends[this.k]!) {
      const end = this.ends[this.k]!;
      const joined = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
      const part = joined.subarray(0, end - this.start);
      const rest = joined.subarray(end - this.start);
      if (this.k >= this.told) {
        this.onPart(this.k, part);
        this.told = this.k + 1;
      }
      this.parts = rest.length > 0 ? [rest] : [];
      this.start = end;
      this.k++;
    }
  }
}
