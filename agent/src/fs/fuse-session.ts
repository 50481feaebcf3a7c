/**
 * One FUSE session: the requests of one connection decoded and handed to a
 * {@link FuseHandler}, and its replies and kernel notifications encoded, over
 * a {@link FuseTransport} (the device in this process, or the FUSE keeper's).
 */
import type { Logger } from "pino";
import { decodeRequest, Errno, Op, outHeader, type FuseRequest } from "./fuse-abi.ts";
import type { FuseTransport } from "./fuse-transport.ts";

/** What a session hands its requests to. */
export interface FuseHandler {
  /**
   * Handle one request (INIT, INTERRUPT and DESTROY are the session's).
   * Must answer exactly once through `session.reply` or
   * `session.replyError`, now or later (FORGET: never), and must not throw.
   */
  handle(req: FuseRequest, session: FuseSession): void;
  /** Abort request `unique` if it is still running; true when it was found. */
  interrupt(unique: bigint): boolean;
}

const INT_REQ_BIT = 1n;

/** See the module comment. */
export class FuseSession {
  readonly transport: FuseTransport;
  private readonly handler: FuseHandler;
  private readonly log: Logger;

  constructor(components: { handler: FuseHandler; transport: FuseTransport; logger: Logger }) {
    this.handler = components.handler;
    this.transport = components.transport;
    this.log = components.logger;
    this.transport.onRequest = (buf) => this.dispatch(buf);
  }

  private dispatch(buf: Buffer): void {
    const req = decodeRequest(buf);
    if (!req) {
      this.log.warn({ length: buf.length }, "short FUSE request ignored");
      return;
    }
    try {
      if (req.opcode === Op.INTERRUPT) {
        if (req.body.length < 8 || !this.handler.interrupt(req.body.readBigUInt64LE(0))) this.replyError(req.unique | INT_REQ_BIT, Errno.EAGAIN);
        return;
      }
      this.handler.handle(req, this);
    } catch (err) {
      this.log.error({ err, opcode: req.opcode }, "FUSE request handler threw");
      this.replyError(req.unique, Errno.EIO);
    }
  }

  /** Answer request `unique` with the concatenation of `parts`. Never throws. */
  reply(unique: bigint, parts: readonly Buffer[] = []): void {
    let len = 0;
    for (const p of parts) len += p.length;
    this.transport.write([outHeader(unique, 0, len), ...parts]);
  }

  /** Answer request `unique` with errno `errno` (positive). Never throws. */
  replyError(unique: bigint, errno: number): void {
    this.transport.write([outHeader(unique, -errno, 0)]);
  }

  /** Send kernel notification `code` with `payload`. Best effort, never throws. */
  notify(code: number, payload: Buffer): void {
    this.transport.notify([outHeader(0n, code, payload.length), payload]);
  }
}
