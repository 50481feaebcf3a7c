/**
 * The wire between the FUSE keeper and the agent, on a unix stream socket:
 * frames of `u32 length | u8 type | u32 session | payload` (little endian;
 * `length` counts what follows it). FUSE requests and replies travel as the
 * kernel's own bytes; control messages are JSON.
 */

/** Frame types. Keeper → agent below 10, agent → keeper from 10. */
export const Frame = {
  /** K→A, JSON `Welcome`: the connections the keeper holds. First frame of every connection. */
  WELCOME: 1,
  /** K→A, raw: one FUSE request of `session`. */
  REQUEST: 2,
  /** K→A, JSON `Result`: the answer to MOUNT or UNMOUNT `tag`. */
  RESULT: 3,
  /** K→A: connection `session` ended from outside (unmounted, aborted). */
  ENDED: 4,
  /** A→K, JSON `MountRequest`: mount a new connection. */
  MOUNT: 10,
  /** A→K, JSON `{ tag }`: unmount connection `session`. */
  UNMOUNT: 11,
  /** A→K: the agent serves every connection it attached to; held requests flow to it. */
  READY: 12,
  /** A→K, raw: one FUSE reply or interrupt answer for `session`. */
  REPLY: 13,
  /** A→K, raw: one FUSE notification for `session`. */
  NOTIFY: 14,
  /** A→K, JSON: the agent's state of `session`, kept for the next agent (WELCOME carries it). */
  STATE: 15,
} as const;

/** One connection the keeper holds. */
export interface HeldSession {
  id: number;
  mountpoint: string;
  fsName: string;
  device: string;
  state: unknown;
}

/** The first frame an agent receives. */
export interface Welcome {
  pid: number;
  sessions: HeldSession[];
}

/** MOUNT's payload. */
export interface MountRequest {
  tag: number;
  mountpoint: string;
  fsName: string;
  readAheadKb: number;
}

/** RESULT's payload: `id` of the mounted session, or the error (a base error code and message). */
export interface Result {
  tag: number;
  id?: number;
  device?: string;
  error?: { code: string; message: string };
}

const HEADER = 9;

/** One frame, header and payload, ready for `socket.write`. */
export function frame(type: number, session: number, payload: Buffer | readonly Buffer[] = []): Buffer[] {
  const parts = Buffer.isBuffer(payload) ? [payload] : payload;
  let len = 0;
  for (const p of parts) len += p.length;
  const h = Buffer.allocUnsafe(HEADER);
  h.writeUInt32LE(5 + len, 0);
  h.writeUInt8(type, 4);
  h.writeUInt32LE(session, 5);
  return [h, ...parts];
}

/** A frame with a JSON payload. */
export function jsonFrame(type: number, session: number, value: unknown): Buffer[] {
  return frame(type, session, Buffer.from(JSON.stringify(value)));
}

/** Frames cut from a byte stream, in order. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  private readonly onFrame: (type: number, session: number, payload: Buffer) => void;

  constructor(onFrame: (type: number, session: number, payload: Buffer) => void) {
    this.onFrame = onFrame;
  }

  /** Feed bytes as they arrive. */
  push(data: Buffer): void {
    this.chunks.push(data);
    this.buffered += data.length;
    for (;;) {
      if (this.buffered < 4) return;
      const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.flatten();
      const need = 4 + head.readUInt32LE(0);
      if (this.buffered < need) return;
      const buf = this.chunks[0]!.length >= need ? this.chunks[0]! : this.flatten();
      const rest = buf.subarray(need);
      this.chunks = rest.length ? [rest, ...this.chunks.slice(1)] : this.chunks.slice(1);
      this.buffered -= need;
      this.onFrame(buf.readUInt8(4), buf.readUInt32LE(5), buf.subarray(HEADER, need));
    }
  }

  private flatten(): Buffer {
    const all = Buffer.concat(this.chunks, this.buffered);
    this.chunks = [all];
    return all;
  }
}
