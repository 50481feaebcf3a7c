/**
 * Where a FUSE session's connection lives. In this process
 * (`InProcessMounter`), a connection dies with the process; held by the FUSE
 * keeper (`../keeper`), it outlives it, and the next process attaches to it.
 */
import type { Logger } from "pino";
import { FuseDevice, type FuseMountInit } from "./fuse-device.ts";
import type { FuseReaderKind } from "./fuse-reader.ts";

/** One FUSE connection as a session sees it. */
export interface FuseTransport {
  readonly mountpoint: string;
  /** Whether the connection is mounted and serving. */
  readonly mounted: boolean;
  /**
   * Whether the connection was mounted before this process attached to it:
   * the kernel may hold node ids that an earlier process gave out, and mounts
   * stacked on it (overlays) are alive.
   */
  readonly adopted: boolean;
  /** What the session's owner saved with the connection ({@link saveState}), or undefined. */
  readonly state: unknown;
  /** Requests, raw, as the kernel wrote them (INIT and DESTROY are answered below). Set by the session. */
  onRequest: (buf: Buffer) => void;
  /** Write one reply (out header first). Never throws. */
  write(parts: readonly Buffer[]): void;
  /** Write one kernel notification (out header first). Best effort, never throws. */
  notify(parts: readonly Buffer[]): void;
  /**
   * Keep `state` (JSON) with the connection: a process that attaches to it
   * later finds it in `state`. Ordered with replies: a reply written after it
   * is never seen by the kernel before the state is kept.
   */
  saveState(state: unknown): void;
  /** Unmount; a busy mount is detached and its connection aborted. Idempotent. */
  unmount(opts?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Let go of the connection without unmounting it, where it can outlive this
   * process (the keeper holds its requests for the next one); otherwise unmount.
   */
  detach(): Promise<void>;
}

/** Gives sessions their connections. */
export interface FuseMounter {
  /** The connection at `init.mountpoint`: the one already there if this mounter holds it, else a new mount. */
  attach(init: FuseMountInit, opts?: { signal?: AbortSignal }): Promise<FuseTransport>;
  /** Deliver requests: this process is ready for every connection it attached to (requests held until now flow). */
  ready(): void;
  /** Let go of every connection (see `FuseTransport.detach`) and of the mounter's own resources. */
  close(): Promise<void>;
}

/** Connections mounted and served in this process; they end with it. */
export class InProcessMounter implements FuseMounter {
  readonly #log: Logger;
  readonly #reader: FuseReaderKind | undefined;

  /** `reader`: how requests are read (default the fastest this Node.js has); for tests. */
  constructor(components: { logger: Logger }, opts: { reader?: FuseReaderKind } = {}) {
    this.#log = components.logger;
    this.#reader = opts.reader;
  }

  async attach(init: FuseMountInit, opts: { signal?: AbortSignal } = {}): Promise<FuseTransport> {
    const device = new FuseDevice({ logger: this.#log }, { ...init, ...(this.#reader ? { reader: this.#reader } : {}) });
    let state: unknown;
    const transport: FuseTransport = {
      mountpoint: device.mountpoint,
      get mounted() {
        return device.mounted;
      },
      adopted: false,
      get state() {
        return state;
      },
      onRequest: () => undefined,
      write: (parts) => device.write(parts),
      notify: (parts) => device.notify(parts),
      saveState: (s) => (state = s),
      unmount: (o) => device.unmount(o),
      detach: () => device.unmount(),
    };
    device.onRequest = (buf) => transport.onRequest(buf);
    await device.mount(opts);
    return transport;
  }

  ready(): void {}

  async close(): Promise<void> {}
}
