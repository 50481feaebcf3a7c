/**
 * The FUSE keeper: a small long-lived process that owns the agent's FUSE
 * connections, so they outlive the agent's process. It mounts on the agent's
 * behalf, relays each request to the agent that is connected and each reply
 * back to the kernel, and while no agent is ready (killed, restarting,
 * upgrading) it holds the requests, and replays the unanswered ones to the
 * next agent. Requests held longer than `holdMs` are answered EIO.
 *
 * Node cannot pass a file descriptor to a process already running, so the
 * descriptors stay here and the bytes travel over a unix socket
 * (`./protocol.ts`). What requests mean is the agent's business: the keeper
 * answers none but INIT and DESTROY (the device's), and those it gives up on.
 */
import { createServer, connect, type Server, type Socket } from "node:net";
import { rm, writeFile } from "node:fs/promises";
import { ShoalError, toShoalError } from "@shoal/base";
import type { Logger } from "pino";
import { Errno, IN_HEADER_SIZE, Op, outHeader } from "../fs/fuse-abi.ts";
import { FuseDevice } from "../fs/fuse-device.ts";
import { Frame, FrameReader, frame, jsonFrame, type MountRequest, type Result, type Welcome } from "./protocol.ts";

/** Settings of a {@link FuseKeeper}. */
export interface FuseKeeperInit {
  /** Unix socket the agent connects to. */
  socket: string;
  /** How long requests wait for an agent before they are answered EIO, ms; 0 waits for ever. */
  holdMs: number;
  /** Exit this long after the last connection is gone while no agent is connected, ms. */
  idleExitMs?: number;
  /** Where to write this process's pid (removed at stop). */
  pidFile?: string;
}

/** Counts since start, for the log and the agent's metrics. */
export interface KeeperCounters {
  relayed: number;
  /** Requests that arrived while no agent was ready. */
  held: number;
  /** Requests sent again to a new agent because the one before left them unanswered. */
  replayed: number;
  /** Requests answered EIO because no agent came within the hold time. */
  expired: number;
}

interface Held {
  id: number;
  device: FuseDevice;
  state: unknown;
  /** Requests not answered yet, by unique, in arrival order. */
  pending: Map<bigint, Buffer>;
  /** Uniques already sent to the agent that is connected now. */
  sent: Set<bigint>;
}

interface AgentLink {
  socket: Socket;
  ready: boolean;
}

/** See the module comment. */
export class FuseKeeper {
  /** Called once the keeper has nothing left to keep (no connection, no agent) for `idleExitMs`. */
  onIdle: () => void = () => undefined;
  readonly counters: KeeperCounters = { relayed: 0, held: 0, replayed: 0, expired: 0 };
  private readonly log: Logger;
  private readonly init: FuseKeeperInit;
  private readonly sessions = new Map<number, Held>();
  private nextId = 1;
  private agent: AgentLink | undefined;
  private server: Server | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** No agent came in time: requests are answered EIO until one is ready. */
  private expired = false;

  constructor(components: { logger: Logger }, init: FuseKeeperInit) {
    this.log = components.logger;
    this.init = init;
  }

  /** Listen on the socket (a stale socket file is replaced; a live keeper there is an error). */
  async start(): Promise<void> {
    if (await answers(this.init.socket)) throw new ShoalError("SHOAL_ERR_ALREADY_RUNNING", `a FUSE keeper already listens on ${this.init.socket}`);
    await rm(this.init.socket, { force: true });
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.init.socket, () => {
        server.off("error", reject);
        resolve();
      });
    });
    this.server = server;
    if (this.init.pidFile) await writeFile(this.init.pidFile, `${process.pid}\n`);
    this.startHold();
    this.checkIdle();
    this.log.info({ socket: this.init.socket, holdMs: this.init.holdMs }, "FUSE keeper ready");
  }

  /** Unmount every connection (processes using them get ENOTCONN) and stop listening. */
  async stop(): Promise<void> {
    clearTimeout(this.holdTimer);
    clearTimeout(this.idleTimer);
    this.agent?.socket.destroy();
    this.agent = undefined;
    // nobody answers from now on: what is asked while unmounting fails at once
    this.expired = true;
    for (const s of this.sessions.values()) {
      for (const unique of s.pending.keys()) s.device.write([outHeader(unique, -Errno.EIO, 0)]);
      s.pending.clear();
    }
    for (const s of [...this.sessions.values()]) {
      this.sessions.delete(s.id);
      await s.device.unmount().catch((err: unknown) => this.log.warn({ err, mountpoint: s.device.mountpoint }, "unmount at stop failed"));
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    if (this.init.pidFile) await rm(this.init.pidFile, { force: true });
    this.log.info(this.counters, "FUSE keeper stopped");
  }

  private accept(socket: Socket): void {
    if (this.agent) {
      this.log.warn("a new agent connected; dropping the one before");
      this.agent.socket.destroy();
    }
    const link: AgentLink = { socket, ready: false };
    this.agent = link;
    clearTimeout(this.idleTimer);
    for (const s of this.sessions.values()) s.sent.clear();
    const reader = new FrameReader((type, session, payload) => {
      try {
        this.onFrame(link, type, session, payload);
      } catch (err) {
        this.log.error({ err, type }, "bad frame from the agent; dropping it");
        socket.destroy();
      }
    });
    socket.on("data", (d: Buffer) => reader.push(d));
    socket.on("error", (err) => this.log.debug({ err }, "agent socket error"));
    socket.on("close", () => {
      if (this.agent !== link) return;
      this.agent = undefined;
      const pending = [...this.sessions.values()].reduce((n, s) => n + s.pending.size, 0);
      this.log.warn({ pending }, "the agent is gone; holding requests for the next one");
      this.startHold();
      this.checkIdle();
    });
    const welcome: Welcome = {
      pid: process.pid,
      sessions: [...this.sessions.values()].map((s) => ({ id: s.id, mountpoint: s.device.mountpoint, fsName: s.device.init.fsName, device: s.device.device ?? "", state: s.state })),
    };
    socket.write(Buffer.concat(jsonFrame(Frame.WELCOME, 0, welcome)));
    this.log.info({ sessions: welcome.sessions.length }, "agent connected");
  }

  private onFrame(link: AgentLink, type: number, id: number, payload: Buffer): void {
    if (link !== this.agent) return;
    switch (type) {
      case Frame.REPLY: {
        const s = this.sessions.get(id);
        if (!s || payload.length < 16) return;
        const unique = payload.readBigUInt64LE(8);
        s.pending.delete(unique);
        s.sent.delete(unique);
        s.device.write([payload]);
        return;
      }
      case Frame.NOTIFY:
        this.sessions.get(id)?.device.notify([Buffer.from(payload)]);
        return;
      case Frame.STATE: {
        const s = this.sessions.get(id);
        if (s) s.state = JSON.parse(payload.toString("utf8")) as unknown;
        return;
      }
      case Frame.READY:
        this.ready(link);
        return;
      case Frame.MOUNT:
        void this.mount(link, JSON.parse(payload.toString("utf8")) as MountRequest);
        return;
      case Frame.UNMOUNT:
        void this.unmount(link, id, (JSON.parse(payload.toString("utf8")) as { tag: number }).tag);
        return;
      default:
        this.log.warn({ type }, "unknown frame from the agent ignored");
    }
  }

  private ready(link: AgentLink): void {
    link.ready = true;
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
    if (this.expired) this.log.info("an agent is ready again; requests are answered again");
    this.expired = false;
    let replayed = 0;
    for (const s of this.sessions.values()) {
      for (const [unique, buf] of s.pending) {
        if (s.sent.has(unique)) continue;
        this.forward(s, unique, buf);
        replayed++;
      }
    }
    this.counters.replayed += replayed;
    this.log.info({ replayed }, "agent ready");
  }

  private async mount(link: AgentLink, req: MountRequest): Promise<void> {
    const id = this.nextId++;
    const device = new FuseDevice({ logger: this.log.child({ session: id }) }, { mountpoint: req.mountpoint, fsName: req.fsName, readAheadKb: req.readAheadKb });
    const held: Held = { id, device, state: undefined, pending: new Map(), sent: new Set() };
    device.onRequest = (buf) => this.onRequest(held, buf);
    device.onEnd = () => this.ended(held);
    let result: Result;
    try {
      await device.mount();
      this.sessions.set(id, held);
      result = { tag: req.tag, id, device: device.device ?? "" };
      this.log.info({ session: id, mountpoint: device.mountpoint }, "mounted");
    } catch (err) {
      const e = toShoalError(err);
      result = { tag: req.tag, error: { code: e.code, message: e.message } };
    }
    if (link === this.agent) link.socket.write(Buffer.concat(jsonFrame(Frame.RESULT, 0, result)));
    else if (result.id !== undefined) this.checkIdle();
  }

  private async unmount(link: AgentLink, id: number, tag: number): Promise<void> {
    const s = this.sessions.get(id);
    let result: Result = { tag };
    if (s) {
      // umount(8) stats the mountpoint first: the session answers through the agent until it is gone
      try {
        await s.device.unmount();
        this.log.info({ session: id, mountpoint: s.device.mountpoint }, "unmounted");
      } catch (err) {
        const e = toShoalError(err);
        result = { tag, error: { code: e.code, message: e.message } };
      } finally {
        this.sessions.delete(id);
      }
    }
    if (link === this.agent) link.socket.write(Buffer.concat(jsonFrame(Frame.RESULT, 0, result)));
    this.checkIdle();
  }

  private ended(s: Held): void {
    if (this.sessions.get(s.id) !== s) return;
    this.sessions.delete(s.id);
    void s.device.unmount();
    this.agent?.socket.write(Buffer.concat(frame(Frame.ENDED, s.id)));
    this.checkIdle();
  }

  private onRequest(s: Held, buf: Buffer): void {
    const opcode = buf.readUInt32LE(4);
    const unique = buf.readBigUInt64LE(8);
    const agent = this.agent?.ready ? this.agent : undefined;
    if (opcode === Op.FORGET || opcode === Op.BATCH_FORGET) {
      if (agent) agent.socket.write(Buffer.concat(frame(Frame.REQUEST, s.id, buf)));
      return;
    }
    if (opcode === Op.INTERRUPT) {
      const target = buf.length >= IN_HEADER_SIZE + 8 ? buf.readBigUInt64LE(IN_HEADER_SIZE) : -1n;
      if (agent && s.sent.has(target)) agent.socket.write(Buffer.concat(frame(Frame.REQUEST, s.id, buf)));
      else if (s.pending.delete(target)) s.device.write([outHeader(target, -Errno.EINTR, 0)]);
      return;
    }
    if (this.expired) {
      this.counters.expired++;
      s.device.write([outHeader(unique, -Errno.EIO, 0)]);
      return;
    }
    s.pending.set(unique, buf);
    if (agent) this.forward(s, unique, buf);
    else this.counters.held++;
  }

  private forward(s: Held, unique: bigint, buf: Buffer): void {
    s.sent.add(unique);
    this.counters.relayed++;
    this.agent!.socket.write(Buffer.concat(frame(Frame.REQUEST, s.id, buf)));
  }

  /** Start the hold clock if no agent is ready (at start, when the agent goes). */
  private startHold(): void {
    if (this.agent?.ready || this.holdTimer || this.init.holdMs <= 0) return;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      if (this.agent?.ready) return;
      this.expired = true;
      let n = 0;
      for (const s of this.sessions.values()) {
        for (const unique of s.pending.keys()) s.device.write([outHeader(unique, -Errno.EIO, 0)]);
        n += s.pending.size;
        s.pending.clear();
        s.sent.clear();
      }
      this.counters.expired += n;
      this.log.error({ holdMs: this.init.holdMs, answered: n }, "no agent came within the hold time; requests are answered EIO until one is ready");
    }, this.init.holdMs);
    this.holdTimer.unref();
  }

  private checkIdle(): void {
    clearTimeout(this.idleTimer);
    if (this.agent || this.sessions.size > 0) return;
    this.idleTimer = setTimeout(() => {
      if (!this.agent && this.sessions.size === 0) this.onIdle();
    }, this.init.idleExitMs ?? 2_000);
  }
}

/** Whether something accepts connections on unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
