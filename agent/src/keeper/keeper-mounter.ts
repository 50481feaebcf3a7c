/**
 * The agent's side of the FUSE keeper: a `FuseMounter` whose connections the
 * keeper holds. It connects to the keeper's socket (starting a keeper, as
 * its own process group, when none answers), adopts the connections the
 * keeper already holds, asks it for new mounts, and speaks each
 * connection's requests and replies over the socket.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { resolve } from "node:path";
import { ShoalError } from "@shoal/base";
import type { Logger } from "pino";
import type { FuseMountInit } from "../fs/fuse-device.ts";
import type { FuseMounter, FuseTransport } from "../fs/fuse-transport.ts";
import { Frame, FrameReader, frame, jsonFrame, type HeldSession, type Result, type Welcome } from "./protocol.ts";

/** Settings of a {@link KeeperMounter}. */
export interface KeeperMounterInit {
  /** The keeper's socket. */
  socket: string;
  /** The argv that starts a keeper listening on `socket`, when none answers. */
  command: readonly string[];
  /** Where a keeper started here writes its log. */
  logFile: string;
  /** How long a keeper started here may take to answer, ms (default 20 s). */
  startTimeoutMs?: number;
}

interface Link {
  socket: Socket;
  welcome: Welcome;
}

interface KeeperTransport extends FuseTransport {
  ended(): void;
  request(buf: Buffer): void;
}

/** See the module comment. */
export class KeeperMounter implements FuseMounter {
  /** Called once if the keeper goes away: its connections, and every mount on them, are dead. */
  onLost: (err: Error) => void = () => undefined;
  readonly #log: Logger;
  readonly #init: KeeperMounterInit;
  #link: Promise<Link> | undefined;
  #closing = false;
  readonly #transports = new Map<number, KeeperTransport>();
  readonly #results = new Map<number, (r: Result) => void>();
  #tag = 0;

  constructor(components: { logger: Logger }, init: KeeperMounterInit) {
    this.#log = components.logger.child({ component: "fuse-keeper" });
    this.#init = init;
  }

  /** The pid of the keeper this mounter talks to. */
  async keeperPid(): Promise<number> {
    return (await this.#connected()).welcome.pid;
  }

  async attach(init: FuseMountInit): Promise<FuseTransport> {
    const link = await this.#connected();
    const mountpoint = resolve(init.mountpoint);
    const held = link.welcome.sessions.find((s) => s.mountpoint === mountpoint && !this.#transports.has(s.id));
    if (held) {
      this.#log.info({ session: held.id, mountpoint }, "attached to a FUSE connection the keeper held");
      return this.#transport(link, held, true);
    }
    const tag = ++this.#tag;
    const result = new Promise<Result>((res) => this.#results.set(tag, res));
    link.socket.write(Buffer.concat(jsonFrame(Frame.MOUNT, 0, { tag, mountpoint, fsName: init.fsName, readAheadKb: init.readAheadKb })));
    const r = await result;
    if (r.error || r.id === undefined) throw new ShoalError(r.error?.code === "SHOAL_ERR_MOUNT_FAILED" ? "SHOAL_ERR_MOUNT_FAILED" : "SHOAL_ERR_KEEPER_UNAVAILABLE", r.error?.message ?? "the keeper did not mount");
    return this.#transport(link, { id: r.id, mountpoint, fsName: init.fsName, device: r.device ?? "", state: undefined }, false);
  }

  ready(): void {
    void this.#link?.then((l) => l.socket.write(Buffer.concat(frame(Frame.READY, 0))), () => undefined);
  }

  async close(): Promise<void> {
    this.#closing = true;
    const link = await this.#link?.catch(() => undefined);
    if (!link) return;
    await new Promise<void>((res) => {
      link.socket.once("close", () => res());
      link.socket.end();
    });
  }

  #transport(link: Link, held: HeldSession, adopted: boolean): KeeperTransport {
    let mounted = true;
    let state = held.state;
    const send = (type: number, payload: readonly Buffer[] | Buffer) => {
      const s = link.socket;
      // after close() the socket is ending: the keeper holds what is unanswered for the next agent
      if (!mounted || !s.writable) return;
      s.cork();
      for (const part of frame(type, held.id, payload)) s.write(part);
      s.uncork();
    };
    const t: KeeperTransport = {
      mountpoint: held.mountpoint,
      get mounted() {
        return mounted;
      },
      adopted,
      get state() {
        return state;
      },
      onRequest: () => undefined,
      request: (buf) => t.onRequest(buf),
      ended: () => {
        mounted = false;
        this.#transports.delete(held.id);
      },
      write: (parts) => send(Frame.REPLY, parts),
      notify: (parts) => send(Frame.NOTIFY, parts),
      saveState: (s) => {
        state = s;
        send(Frame.STATE, Buffer.from(JSON.stringify(s)));
      },
      unmount: async () => {
        if (!mounted) return;
        const tag = ++this.#tag;
        const result = new Promise<Result>((res) => this.#results.set(tag, res));
        link.socket.write(Buffer.concat(jsonFrame(Frame.UNMOUNT, held.id, { tag })));
        const r = await result;
        t.ended();
        if (r.error) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", r.error.message);
      },
      detach: async () => {
        this.#transports.delete(held.id);
        mounted = false;
      },
    };
    this.#transports.set(held.id, t);
    return t;
  }

  #connected(): Promise<Link> {
    this.#link ??= this.#connect();
    return this.#link;
  }

  async #connect(): Promise<Link> {
    let link = await this.#tryConnect();
    if (!link) {
      const child = this.#startKeeper();
      const deadline = Date.now() + (this.#init.startTimeoutMs ?? 20_000);
      while (!link) {
        if (child.exitCode !== null || child.signalCode !== null) throw new ShoalError("SHOAL_ERR_KEEPER_UNAVAILABLE", `the FUSE keeper exited (${child.exitCode ?? child.signalCode}): ${this.#logTail()}`);
        if (Date.now() > deadline) throw new ShoalError("SHOAL_ERR_KEEPER_UNAVAILABLE", `the FUSE keeper did not answer on ${this.#init.socket}: ${this.#logTail()}`);
        await new Promise((r) => setTimeout(r, 50));
        link = await this.#tryConnect();
      }
      this.#log.info({ pid: child.pid, socket: this.#init.socket }, "started a FUSE keeper");
    } else {
      this.#log.info({ pid: link.welcome.pid, sessions: link.welcome.sessions.length }, "connected to the FUSE keeper");
    }
    return link;
  }

  /** Connect and read the keeper's welcome; undefined when nothing listens. */
  #tryConnect(): Promise<Link | undefined> {
    return new Promise((res, rej) => {
      const socket = connect(this.#init.socket);
      let welcomed = false;
      const reader = new FrameReader((type, session, payload) => {
        if (!welcomed) {
          if (type !== Frame.WELCOME) {
            socket.destroy();
            rej(new ShoalError("SHOAL_ERR_KEEPER_UNAVAILABLE", `the FUSE keeper on ${this.#init.socket} broke its protocol (frame ${type} before its welcome)`));
            return;
          }
          welcomed = true;
          res({ socket, welcome: JSON.parse(payload.toString("utf8")) as Welcome });
          return;
        }
        this.#onFrame(type, session, payload);
      });
      socket.on("data", (d: Buffer) => reader.push(d));
      socket.once("error", (err: NodeJS.ErrnoException) => {
        if (welcomed) return;
        if (err.code === "ENOENT" || err.code === "ECONNREFUSED") res(undefined);
        else rej(new ShoalError("SHOAL_ERR_KEEPER_UNAVAILABLE", `cannot reach the FUSE keeper on ${this.#init.socket}: ${err.message}`, { cause: err }));
      });
      socket.on("error", (err) => this.#log.debug({ err }, "keeper socket error"));
      socket.once("close", () => {
        if (!welcomed) {
          res(undefined);
          return;
        }
        for (const t of [...this.#transports.values()]) t.ended();
        const err = new ShoalError("SHOAL_ERR_KEEPER_UNAVAILABLE", "the FUSE keeper went away: its FUSE connections, and the mounts on them, are gone");
        for (const r of this.#results.values()) r({ tag: 0, error: { code: err.code, message: err.message } });
        this.#results.clear();
        if (!this.#closing) {
          this.#log.error(err.message);
          this.onLost(err);
        }
      });
    });
  }

  #onFrame(type: number, session: number, payload: Buffer): void {
    switch (type) {
      case Frame.REQUEST:
        this.#transports.get(session)?.request(payload);
        return;
      case Frame.RESULT: {
        const r = JSON.parse(payload.toString("utf8")) as Result;
        this.#results.get(r.tag)?.(r);
        this.#results.delete(r.tag);
        return;
      }
      case Frame.ENDED:
        this.#log.warn({ session }, "a FUSE connection the keeper held was ended from outside");
        this.#transports.get(session)?.ended();
        return;
      default:
        this.#log.warn({ type }, "unknown frame from the keeper ignored");
    }
  }

  #startKeeper() {
    const [cmd, ...args] = this.#init.command;
    const fd = openSync(this.#init.logFile, "a");
    try {
      const child = spawn(cmd!, args, { detached: true, stdio: ["ignore", fd, fd] });
      child.unref();
      return child;
    } finally {
      closeSync(fd);
    }
  }

  #logTail(): string {
    try {
      return readFileSync(this.#init.logFile, "utf8").trim().split("\n").slice(-3).join(" | ") || "no log";
    } catch {
      return "no log";
    }
  }
}
