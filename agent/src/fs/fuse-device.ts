/**
 * One FUSE connection on /dev/fuse: mount (mount(8) with the device fd), a
 * reader thread, the INIT handshake, raw replies and notifications, unmount.
 * Every request but INIT and DESTROY goes to `onRequest` as the kernel wrote
 * it, undecoded: the device does not know what requests mean, so the same
 * code serves a session in the agent's process and in the FUSE keeper's.
 *
 * Requests are read on the main thread as they come (`fuse-reader.ts`: the
 * event loop polls the device; a worker thread where this Node.js cannot);
 * replies are written synchronously (writes to /dev/fuse never block). The
 * libuv thread pool is never held by the device, so the process may read its
 * own mount with asynchronous fs calls; a synchronous fs call on the mount
 * from the main thread of the process that answers it deadlocks it.
 */
import { ShoalError } from "@shoal/base";
import { closeSync, existsSync, openSync, writev, writevSync, writeFile } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Logger } from "pino";
import { MAX_BACKGROUND, MAX_PAGES, MAX_WRITE } from "./constants.ts";
import {
  decodeRequest, Errno, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, FUSE_MIN_MINOR_VERSION, InitFlag, Op, outHeader,
  type FuseRequest,
} from "./fuse-abi.ts";
import { startFuseReader, type FuseReader, type FuseReaderKind } from "./fuse-reader.ts";
import { findMount, runCommand, unmountPath } from "./mount.ts";

/** Where and how a FUSE connection is mounted. */
export interface FuseMountInit {
  mountpoint: string;
  /** Mount source and subtype (`fuse.NAME` in /proc/mounts). */
  fsName: string;
  /** Read-ahead of the mount in KiB (set through /sys/class/bdi), 0 to keep the kernel's. */
  readAheadKb: number;
  /** How requests are read (`fuse-reader.ts`); default the fastest this Node.js has. For tests. */
  reader?: FuseReaderKind;
}

const INIT_OUT_SIZE = 64;
const FUSECTL = "/sys/fs/fuse/connections";

/** A mounted (or mountable) FUSE connection. See the module comment. */
export class FuseDevice {
  readonly mountpoint: string;
  readonly init: FuseMountInit;
  /** Each request but INIT and DESTROY, raw. Set before `mount`. */
  onRequest: (buf: Buffer) => void = () => undefined;
  /** The connection ended without `unmount` (unmounted or aborted from outside, or a read error). */
  onEnd: () => void = () => undefined;
  private readonly log: Logger;
  private fd: number | undefined;
  private reader: FuseReader | undefined;
  private ready: { resolve: () => void; reject: (err: Error) => void } | undefined;
  private dev: string | undefined;
  private readerEnded = false;
  private stopping = false;
  private unmounting: Promise<void> | undefined;
  private readonly notifying = new Set<Promise<void>>();

  constructor(components: { logger: Logger }, init: FuseMountInit) {
    this.log = components.logger;
    this.init = init;
    this.mountpoint = resolve(init.mountpoint);
  }

  /** Whether the connection is mounted and serving (false once it has ended, even from outside). */
  get mounted(): boolean {
    return this.fd !== undefined && !this.readerEnded;
  }

  /** How requests are read, once mounted. */
  get readerKind(): FuseReaderKind | undefined {
    return this.reader?.kind;
  }

  /** The mount's device number ("major:minor"), once mounted. */
  get device(): string | undefined {
    return this.dev;
  }

  /**
   * Mount at the mountpoint (created if missing) and resolve once the
   * kernel's INIT handshake is done. A dead mount of the same type left
   * there by a crashed process is detached first; a live one is an error.
   * Needs root (CAP_SYS_ADMIN). Rejects with `ShoalError` (`SHOAL_ERR_MOUNT_FAILED`).
   */
  async mount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.fd !== undefined) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${this.mountpoint} is already mounted by this session`);
    await this.detachStale(opts);
    await mkdir(this.mountpoint, { recursive: true });
    const fd = openSync("/dev/fuse", "r+");
    const uid = process.getuid?.() ?? 0;
    const gid = process.getgid?.() ?? 0;
    const options = [
      "ro", "nosuid", "nodev", "default_permissions", "allow_other", `fd=3`, "rootmode=40000", `user_id=${uid}`, `group_id=${gid}`,
    ].join(",");
    try {
      await runCommand("mount", ["-i", "-t", `fuse.${this.init.fsName}`, "-o", options, this.init.fsName, this.mountpoint], {
        fds: [fd], signal: opts.signal,
      });
      this.dev = (await findMount(this.mountpoint))?.device;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.fd = fd;
    const ready = new Promise<void>((res, rej) => (this.ready = { resolve: res, reject: rej }));
    const onAbort = () => this.ready?.reject(new ShoalError("SHOAL_ERR_MOUNT_FAILED", "mount aborted", { cause: opts.signal?.reason }));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    this.startReader(fd);
    try {
      await ready;
      await this.tuneReadAhead();
    } catch (err) {
      await this.unmount().catch((e: unknown) => this.log.error({ err: e }, "unmount after a failed mount failed"));
      throw err;
    } finally {
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Detach a dead mount of our type at the mountpoint (ENOTCONN); refuse a live one. */
  private async detachStale(opts: { signal?: AbortSignal }): Promise<void> {
    const existing = await findMount(this.mountpoint);
    if (existing?.fstype !== `fuse.${this.init.fsName}`) return;
    try {
      await stat(this.mountpoint);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOTCONN") throw err;
      this.log.warn({ mountpoint: this.mountpoint }, "detaching a dead FUSE mount left by an earlier process");
      await unmountPath(this.mountpoint, { lazy: true, signal: opts.signal });
      return;
    }
    throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${this.mountpoint} is already served by another process`);
  }

  private startReader(fd: number): void {
    this.readerEnded = false;
    this.reader = startFuseReader(fd, MAX_WRITE + 64 * 1024, {
      request: (buf) => this.dispatch(buf),
      end: (error) => {
        this.readerEnded = true;
        if (error) this.log.error({ code: error }, "reading /dev/fuse failed; the session stops");
        else if (!this.stopping) this.log.warn({ mountpoint: this.mountpoint }, "the FUSE connection was ended from outside (unmounted or aborted)");
        this.ready?.reject(new ShoalError("SHOAL_ERR_MOUNT_FAILED", `FUSE session at ${this.mountpoint} ended before INIT`));
        if (!this.stopping) this.onEnd();
      },
    }, this.init.reader);
  }

  private async tuneReadAhead(): Promise<void> {
    if (!this.init.readAheadKb || !this.dev) return;
    try {
      await new Promise<void>((res, rej) =>
        writeFile(`/sys/class/bdi/${this.dev}/read_ahead_kb`, String(this.init.readAheadKb), (err) => (err ? rej(err) : res())));
    } catch (err) {
      this.log.debug({ err }, "could not set read-ahead");
    }
  }

  private dispatch(buf: Buffer): void {
    const req = decodeRequest(buf);
    if (!req) {
      this.log.warn({ length: buf.length }, "short FUSE request ignored");
      return;
    }
    if (req.opcode === Op.INIT) return this.handleInit(req);
    if (req.opcode === Op.DESTROY) return this.write([outHeader(req.unique, 0, 0)]);
    try {
      this.onRequest(buf);
    } catch (err) {
      this.log.error({ err, opcode: req.opcode }, "FUSE request handler threw");
      this.write([outHeader(req.unique, -Errno.EIO, 0)]);
    }
  }

  private handleInit(req: FuseRequest): void {
    const major = req.body.readUInt32LE(0);
    const minor = req.body.readUInt32LE(4);
    const maxReadahead = req.body.readUInt32LE(8);
    const kernelFlags = req.body.readUInt32LE(12);
    if (major < FUSE_KERNEL_VERSION || (major === FUSE_KERNEL_VERSION && minor < FUSE_MIN_MINOR_VERSION)) {
      this.write([outHeader(req.unique, -Errno.EPROTO, 0)]);
      this.ready?.reject(new ShoalError("SHOAL_ERR_MOUNT_FAILED", `kernel FUSE protocol ${major}.${minor} is too old (need 7.${FUSE_MIN_MINOR_VERSION})`));
      return;
    }
    const out = Buffer.alloc(INIT_OUT_SIZE);
    out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
    if (major > FUSE_KERNEL_VERSION) {
      // The kernel retries with our major version.
      this.write([outHeader(req.unique, 0, 8), out.subarray(0, 8)]);
      return;
    }
    const wanted = InitFlag.ASYNC_READ | InitFlag.PARALLEL_DIROPS | InitFlag.DO_READDIRPLUS | InitFlag.READDIRPLUS_AUTO
      | InitFlag.MAX_PAGES | InitFlag.CACHE_SYMLINKS | InitFlag.NO_OPEN_SUPPORT;
    out.writeUInt32LE(Math.min(minor, FUSE_KERNEL_MINOR_VERSION), 4);
    out.writeUInt32LE(maxReadahead, 8);
    out.writeUInt32LE((wanted & kernelFlags) >>> 0, 12);
    out.writeUInt16LE(MAX_BACKGROUND, 16);
    out.writeUInt16LE(Math.floor((MAX_BACKGROUND * 3) / 4), 18);
    out.writeUInt32LE(MAX_WRITE, 20);
    out.writeUInt32LE(1, 24); // time_gran: nanoseconds
    out.writeUInt16LE(MAX_PAGES, 28);
    this.write([outHeader(req.unique, 0, out.length), out]);
    this.log.debug({ kernel: `${major}.${minor}`, flags: (wanted & kernelFlags).toString(16) }, "FUSE session initialised");
    this.ready?.resolve();
    this.ready = undefined;
  }

  /** Write one reply (its out header first) to the kernel. Never throws. */
  write(parts: readonly Buffer[]): void {
    if (this.fd === undefined) return;
    try {
      writevSync(this.fd, parts as Buffer[]);
    } catch (err) {
      // ENOENT: the request was interrupted and is gone; nothing to do.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") this.log.warn({ err }, "writing a FUSE reply failed");
    }
  }

  /**
   * Write a kernel notification (out header with the code, then payload),
   * asynchronously (a notification may wait for locks held by requests this
   * thread answers). Best effort: failures (e.g. nothing cached) are ignored.
   */
  notify(parts: readonly Buffer[]): void {
    if (this.fd === undefined || this.readerEnded) return;
    const sent = new Promise<void>((res) => writev(this.fd!, parts as Buffer[], (err) => {
      if (err && err.code !== "ENOENT") this.log.debug({ err }, "FUSE notification failed");
      res();
    }));
    this.notifying.add(sent);
    void sent.then(() => this.notifying.delete(sent));
  }

  /**
   * Unmount and stop the reader. A busy mount is detached lazily and its
   * connection aborted (through /sys/fs/fuse/connections, mounting fusectl
   * if needed), so processes still using it get ENOTCONN. Idempotent.
   */
  unmount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    this.unmounting ??= this.doUnmount(opts).finally(() => (this.unmounting = undefined));
    return this.unmounting;
  }

  private async doUnmount(opts: { signal?: AbortSignal }): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    this.stopping = true;
    if (await this.ownsTopMount()) {
      try {
        await unmountPath(this.mountpoint, opts);
      } catch (err) {
        this.log.warn({ err, mountpoint: this.mountpoint }, "unmount failed; detaching lazily");
        await unmountPath(this.mountpoint, { ...opts, lazy: true });
      }
    }
    // A plain unmount ends the connection only when nothing else holds its
    // superblock; an overlay over a layer directory does (overlayfs clones
    // the lower mounts), as do lazily detached or foreign-unmounted mounts.
    // The connection is then aborted, else the reader would wait forever.
    const ends = this.readerEnded || (await this.endConnection());
    const reader = this.reader;
    if (ends) await reader?.stopped;
    else reader?.unref();
    await Promise.all(this.notifying);
    this.fd = undefined;
    this.reader = undefined;
    this.stopping = false;
    if (ends) {
      if (reader) reader.close();
      else closeSync(fd);
    }
  }

  /**
   * Whether the mount at the mountpoint is this connection's. Device numbers
   * are unique only among live superblocks: once our connection has ended, a
   * mount with our number is ours only if it is dead too.
   */
  private async ownsTopMount(): Promise<boolean> {
    const top = await findMount(this.mountpoint);
    if (!top || top.device !== this.dev) return false;
    if (!this.readerEnded) return true;
    return stat(this.mountpoint).then(() => false, (err: NodeJS.ErrnoException) => err.code === "ENOTCONN");
  }

  /**
   * End our connection through fusectl: true when it is gone or was
   * aborted, false when that cannot be done. fusectl is mounted for the
   * moment if the host has not mounted it.
   */
  private async endConnection(): Promise<boolean> {
    const minor = this.dev?.split(":")[1];
    if (!minor) return false;
    let mountedHere = false;
    if (!(await findMount(FUSECTL))) {
      await runCommand("mount", ["-t", "fusectl", "fusectl", FUSECTL]).then(
        () => (mountedHere = true),
        (err: unknown) => this.log.debug({ err }, "mounting fusectl failed"),
      );
      if (!mountedHere) return false;
    }
    try {
      const dir = `${FUSECTL}/${minor}`;
      if (!existsSync(dir)) return true;
      return await new Promise<boolean>((res) => writeFile(`${dir}/abort`, "1", (err) => {
        if (err && existsSync(dir)) this.log.warn({ err }, "could not abort the FUSE connection; it ends when its last user closes it");
        res(!err || !existsSync(dir));
      }));
    } finally {
      if (mountedHere) await unmountPath(FUSECTL).catch((err: unknown) => this.log.debug({ err }, "unmounting fusectl failed"));
    }
  }
}
