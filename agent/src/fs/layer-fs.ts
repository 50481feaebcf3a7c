/**
 * The layer filesystem: one FUSE session whose top-level directories are
 * layers in overlayfs lower-directory format, for the kernel's overlayfs to
 * stack. Metadata comes from each layer's index (built into a tree once);
 * file bytes from the layer's `LayerData`.
 */
import { errnoNameOf, InvalidArgumentError, ShoalError } from "@shoal/base";
import { join, resolve } from "node:path";
import { pino, type Logger } from "pino";
import {
  DEFAULT_ATTR_TIMEOUT_S, DEFAULT_ENTRY_TIMEOUT_S, DEFAULT_FS_NAME, DEFAULT_READ_AHEAD_KB, ROOT_TIMEOUT_S,
} from "./constants.ts";
import {
  attrOut, cString, direntplusSize, direntSize, entryOut, Errno, FOPEN_KEEP_CACHE, FOPEN_CACHE_DIR, NOTIFY_INVAL_ENTRY,
  NOTIFY_INVAL_INODE, Op, opName, openOut, S_IFDIR, statfsOut, WRITE_OPS, writeDirent, writeEntryOut, xattrSizeOut,
  type Attr, type FuseRequest,
} from "./fuse-abi.ts";
import { FuseSession, type FuseHandler } from "./fuse-session.ts";
import { InProcessMounter, type FuseMounter } from "./fuse-transport.ts";
import type { LayerSnapshot } from "./layer-data.ts";
import { LayerTree, type FsNode } from "./layer-tree.ts";

/** FUSE request counts, for metrics. Read them; do not write them. */
export interface FsCounters {
  /** Requests received, by lower-case opcode name ("lookup", "getattr", "read", ...). */
  ops: Record<string, number>;
  /**
   * Requests answered with an error, by opcode name. Expected answers are
   * not counted: ENOENT from lookup, ENODATA from getxattr, ENOSYS (an
   * operation the kernel may try and then stops asking for).
   */
  errors: Record<string, number>;
  /** File bytes returned by read. */
  bytesRead: number;
}

/** Opcodes the kernel sends as notices, with no answer: dropped dentries reach the agent as these whenever memory is reclaimed. */
const NOTICE_OPS = new Set(["forget", "batch_forget"]);

/** The requests the agent answered: every one counted in `c.ops` except the kernel's forget notices. */
export function answeredRequests(c: FsCounters): number {
  return Object.entries(c.ops).reduce((sum, [op, n]) => (NOTICE_OPS.has(op) ? sum : sum + n), 0);
}

/** Settings of a {@link LayerFilesystem}. */
export interface LayerFilesystemInit {
  /** Where the session is mounted; layer `id` appears at `mountpoint/id`. */
  mountpoint: string;
  /** Seconds the kernel caches lookups inside layers (default one day). */
  entryTimeout?: number;
  /** Seconds the kernel caches attributes inside layers (default one day). */
  attrTimeout?: number;
  /** Mount source and subtype (default "shoal": type `fuse.shoal`). */
  fsName?: string;
  /** Read-ahead of the mount in KiB (default 1024; 0 keeps the kernel's). */
  readAheadKb?: number;
  /**
   * False: serve only layers with no xattr anywhere in their tree, and
   * answer getxattr ENOSYS, after which the kernel asks this connection for
   * none again (it caches no other getxattr answer: overlayfs asks one or
   * two per lower file it looks up). Callers of getxattr then see
   * EOPNOTSUPP, which overlayfs and exec take as "none"; listxattr still
   * answers an empty list. Default true.
   */
  xattrs?: boolean;
}

/** `LayerFilesystem.addLayer` on a filesystem without xattrs was given a layer that has some. */
export class LayerHasXattrsError extends InvalidArgumentError {}

const ROOT_INO = 1;
/**
 * Node ids are `slot * SLOT_SPAN + n`: a layer's slot is kept with the FUSE
 * connection and its nodes are numbered in index order, so a restarted agent
 * gives every node the id the kernel already holds.
 */
const SLOT_SPAN = 2 ** 28;
const MAX_SLOT = 2 ** 53 / SLOT_SPAN - 1;
const O_ACCMODE = 3;
const O_TRUNC = 0o1000;
const LAYER_ID = /^[A-Za-z0-9._@+=-]{1,255}$/;
/** Root names `#<id>`: layer `id`'s uncompressed stream (no layer id holds '#'). */
const STREAM_PREFIX = "#";
/** The page a read of a stream starts with (the page cache's unit): what the reader asked for begins in it. */
const STREAM_PAGE = 4096;
const DOT = Buffer.from(".");
const DOTDOT = Buffer.from("..");

/**
 * Serves layers as read-only overlayfs lower directories over one FUSE
 * session (kernel protocol spoken directly on /dev/fuse; mount options
 * `ro,nosuid,nodev,default_permissions,allow_other`). Layers can be added and
 * removed while mounted. Names, attributes (ns mtimes) and file pages are
 * cached by the kernel for `entryTimeout`/`attrTimeout` (a day): layers
 * never change.
 *
 * Requests are answered on this process's main thread, and `LayerData`
 * usually needs the libuv thread pool (file and zlib work). This process
 * must therefore never read the mount synchronously, and never with more
 * concurrent blocking fs calls than the pool has threads
 * (`UV_THREADPOOL_SIZE`, default 4): those would hold every pool thread
 * while waiting for answers that need one. Other processes (containers)
 * are not limited.
 */
export class LayerFilesystem implements FuseHandler {
  readonly mountpoint: string;
  /** Operation and error counts since construction. */
  readonly counters: FsCounters = { ops: {}, errors: {}, bytesRead: 0 };

  private readonly log: Logger;
  private readonly mounter: FuseMounter;
  private readonly init: LayerFilesystemInit;
  private session: FuseSession | undefined;
  private slots: SlotTable = { next: 1, ids: {} };
  private readonly entryTimeout: number;
  private readonly attrTimeout: number;
  private readonly layers = new Map<string, LayerTree>();
  private readonly nodes = new Map<number, FsNode>();
  private readonly inflight = new Map<bigint, AbortController>();
  /** Regular files read at least once (their `readingFile` was called); dropped with their layer. */
  private readonly filesStarted = new WeakSet<FsNode>();
  private rootMtime = Math.floor(Date.now() / 1000);

  /** `mounter` gives the FUSE connection (default: mounted in this process). */
  constructor(components: { logger?: Logger; mounter?: FuseMounter }, init: LayerFilesystemInit) {
    this.log = (components.logger ?? pino({ level: "silent" })).child({ component: "layerfs" });
    this.mounter = components.mounter ?? new InProcessMounter({ logger: this.log });
    this.entryTimeout = init.entryTimeout ?? DEFAULT_ENTRY_TIMEOUT_S;
    this.attrTimeout = init.attrTimeout ?? DEFAULT_ATTR_TIMEOUT_S;
    this.init = init;
    this.mountpoint = resolve(init.mountpoint);
  }

  /** Whether the filesystem is mounted. */
  get mounted(): boolean {
    return this.session?.transport.mounted ?? false;
  }

  /** Whether the connection outlived an earlier agent (overlays on its layers are alive); see `FuseTransport.adopted`. */
  get adopted(): boolean {
    return this.session?.transport.adopted ?? false;
  }

  /**
   * Mount at `mountpoint` (created if missing), or attach to the connection
   * the mounter holds there, and resolve once the kernel has connected.
   * Add layers before the mounter is made ready: an adopted connection's
   * requests wait until then. Needs root. Rejects with `ShoalError`
   * (`SHOAL_ERR_MOUNT_FAILED`) when mounting fails or it is mounted already.
   */
  async mount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.session?.transport.mounted) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${this.mountpoint} is already mounted by this session`);
    const transport = await this.mounter.attach({
      mountpoint: this.mountpoint, fsName: this.init.fsName ?? DEFAULT_FS_NAME, readAheadKb: this.init.readAheadKb ?? DEFAULT_READ_AHEAD_KB,
    }, opts);
    this.session = new FuseSession({ handler: this, transport, logger: this.log });
    const kept = parseSlotTable(transport.state);
    if (kept && this.layers.size > 0) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", "layers were added before attaching to a connection that has node ids already");
    if (kept) this.slots = kept;
    else transport.saveState(this.slots);
  }

  /** The session of the mounted connection (requests only arrive once there is one). */
  private get connection(): FuseSession {
    if (!this.session) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", `${this.mountpoint} is not mounted`);
    return this.session;
  }

  /**
   * Unmount. Overlays stacked on the layers must be unmounted first; a busy
   * mount is detached lazily and its connection aborted. Idempotent.
   */
  async unmount(opts: { signal?: AbortSignal } = {}): Promise<void> {
    await this.session?.transport.unmount(opts);
  }

  /** Let go of the connection, leaving it mounted where it can outlive this process (see `FuseTransport.detach`). */
  async detach(): Promise<void> {
    await this.session?.transport.detach();
  }

  /**
   * Serve `snapshot` at `mountpoint/<id>`. Builds the layer's tree now
   * (calling `snapshot.resolveLower` as needed), so add layers bottom first.
   * Throws `InvalidArgumentError` for a bad or duplicate id.
   */
  addLayer(snapshot: LayerSnapshot): void {
    const { id } = snapshot;
    if (!LAYER_ID.test(id) || id === "." || id === "..") throw new InvalidArgumentError(`bad layer id ${JSON.stringify(id)}`);
    if (this.layers.has(id)) throw new InvalidArgumentError(`layer ${id} is already in the filesystem`);
    const slot = this.slots.ids[id] ?? this.freeSlot();
    let n = 0;
    const alloc = () => {
      if (++n >= SLOT_SPAN) throw new InvalidArgumentError(`layer ${id} has more than ${SLOT_SPAN - 1} entries`);
      return slot * SLOT_SPAN + n;
    };
    const tree = LayerTree.build(snapshot, alloc, (layerId, path) => this.layers.get(layerId)?.lookup(path));
    if (this.init.xattrs === false && tree.nodes.some((node) => node.xattrs !== undefined && node.xattrs.size > 0)) {
      throw new LayerHasXattrsError(`layer ${id} has xattrs, and ${this.mountpoint} serves none`);
    }
    this.keepSlot(id, slot);
    if (tree.brokenLinks.length > 0) {
      // as tar and containerd would refuse them; shown as absent, and said so
      this.log.warn({ layer: id, count: tree.brokenLinks.length, first: tree.brokenLinks.slice(0, 5) }, "hardlinks whose target is missing or a directory are left out of the layer");
    }
    for (const n of tree.nodes) this.nodes.set(n.ino, n);
    this.layers.set(id, tree);
    this.rootChanged();
  }

  /**
   * Stop serving layer `id`; false when it was not there. Remove a layer only
   * when no overlay, open file or layer above (sharing its hardlinks) uses it.
   */
  removeLayer(id: string): boolean {
    const tree = this.layers.get(id);
    if (!tree) return false;
    this.layers.delete(id);
    for (const n of tree.nodes) this.nodes.delete(n.ino);
    const name = Buffer.from(id);
    const payload = Buffer.alloc(16 + name.length + 1);
    payload.writeBigUInt64LE(BigInt(ROOT_INO), 0);
    payload.writeUInt32LE(name.length, 8);
    name.copy(payload, 16);
    this.session?.notify(NOTIFY_INVAL_ENTRY, payload);
    this.rootChanged();
    return true;
  }

  /** The next slot no layer of this connection has had. */
  private freeSlot(): number {
    if (this.slots.next > MAX_SLOT) throw new ShoalError("SHOAL_ERR_MOUNT_FAILED", "the FUSE connection has run out of node ids; remount it");
    return this.slots.next;
  }

  /** Layer `id` has `slot` on this connection from now on (kept with the connection when new). */
  private keepSlot(id: string, slot: number): void {
    if (this.slots.ids[id] === slot) return;
    this.slots.ids[id] = slot;
    this.slots.next = Math.max(this.slots.next, slot + 1);
    this.session?.transport.saveState(this.slots);
  }

  /** Whether layer `id` has had a slot on this connection (its node ids are known to the kernel). */
  hadLayer(id: string): boolean {
    return this.slots.ids[id] !== undefined;
  }

  /** How many layers are served. */
  get layerCount(): number {
    return this.layers.size;
  }

  /** Whether layer `id` is being served. */
  has(id: string): boolean {
    return this.layers.has(id);
  }

  /** The directory layer `id` appears at. */
  layerPath(id: string): string {
    return join(this.mountpoint, id);
  }

  /** The file that is layer `id`'s whole uncompressed tar stream (block mode's data device). */
  streamPath(id: string): string {
    return join(this.mountpoint, `${STREAM_PREFIX}${id}`);
  }

  /** The tree of served layer `id`. */
  tree(id: string): LayerTree | undefined {
    return this.layers.get(id);
  }

  private rootChanged(): void {
    this.rootMtime = Math.floor(Date.now() / 1000);
    const payload = Buffer.alloc(24);
    payload.writeBigUInt64LE(BigInt(ROOT_INO), 0);
    payload.writeBigInt64LE(-1n, 8); // no page cache to drop; attributes only
    this.session?.notify(NOTIFY_INVAL_INODE, payload);
  }

  private rootAttr(): Attr {
    return {
      ino: ROOT_INO, size: 4096, mode: S_IFDIR | 0o755, nlink: 2 + this.layers.size, uid: 0, gid: 0, rdev: 0,
      mtimeSec: this.rootMtime, mtimeNsec: 0,
    };
  }

  /** @internal FuseHandler: dispatch one request. */
  handle(req: FuseRequest, session: FuseSession): void {
    const name = opName(req.opcode);
    this.counters.ops[name] = (this.counters.ops[name] ?? 0) + 1;
    if (req.opcode === Op.FORGET || req.opcode === Op.BATCH_FORGET) return; // nodes live as long as their layer
    if (WRITE_OPS.has(req.opcode)) return this.fail(req, Errno.EROFS);
    switch (req.opcode) {
      case Op.LOOKUP: return this.lookup(req);
      case Op.GETATTR: return this.getattr(req);
      case Op.READLINK: return this.readlink(req);
      case Op.OPEN: return this.open(req, false);
      case Op.OPENDIR: return this.open(req, true);
      case Op.READ: return this.read(req);
      case Op.READDIR: return this.readdir(req, false);
      case Op.READDIRPLUS: return this.readdir(req, true);
      case Op.GETXATTR: return this.init.xattrs === false ? this.fail(req, Errno.ENOSYS) : this.getxattr(req);
      // listxattr stays answered (an empty list): tools that copy or back up a tree list first and take EOPNOTSUPP for an error
      case Op.LISTXATTR: return this.listxattr(req);
      case Op.STATFS: return this.statfs(req);
      case Op.RELEASE: case Op.RELEASEDIR: case Op.FSYNC: case Op.FSYNCDIR: case Op.ACCESS:
        return session.reply(req.unique);
      // ENOSYS makes the kernel stop sending FLUSH (on every close): nothing to
      // flush, and a process exiting with files open on its own mount would
      // otherwise wait for itself.
      case Op.FLUSH: return this.fail(req, Errno.ENOSYS);
      default: return this.fail(req, Errno.ENOSYS);
    }
  }

  /** @internal FuseHandler: the kernel gave up on request `unique`. */
  interrupt(unique: bigint): boolean {
    const ac = this.inflight.get(unique);
    if (!ac) return false;
    this.inflight.delete(unique);
    ac.abort();
    this.counters.errors.read = (this.counters.errors.read ?? 0) + 1;
    this.connection.replyError(unique, Errno.EINTR);
    return true;
  }

  private fail(req: FuseRequest, errno: number): void {
    const expected = errno === Errno.ENOSYS || (req.opcode === Op.LOOKUP && errno === Errno.ENOENT)
      || (req.opcode === Op.GETXATTR && errno === Errno.ENODATA);
    if (!expected) {
      const name = opName(req.opcode);
      this.counters.errors[name] = (this.counters.errors[name] ?? 0) + 1;
      this.log.debug({ op: name, node: Number(req.nodeid), errno }, "request answered with an error");
    }
    this.connection.replyError(req.unique, errno);
  }

  /** The node of request `req`, or undefined after answering ESTALE. Root (1) is not a node. */
  private node(req: FuseRequest): FsNode | undefined {
    const node = this.nodes.get(req.nodeid);
    if (!node) this.fail(req, Errno.ESTALE);
    return node;
  }

  private lookup(req: FuseRequest): void {
    const name = cString(req.body);
    if (req.nodeid === ROOT_INO) {
      const stream = name.startsWith(STREAM_PREFIX);
      const tree = this.layers.get(stream ? name.slice(STREAM_PREFIX.length) : name);
      if (!tree) return this.fail(req, Errno.ENOENT);
      return this.connection.reply(req.unique, [entryOut(stream ? tree.stream : tree.root, ROOT_TIMEOUT_S, this.attrTimeout)]);
    }
    const dir = this.node(req);
    if (!dir) return;
    if (!dir.children) return this.fail(req, Errno.ENOTDIR);
    const child = dir.children.get(name);
    // A miss is cached too (node id 0): layers never change.
    this.connection.reply(req.unique, [entryOut(child, this.entryTimeout, this.attrTimeout)]);
  }

  private getattr(req: FuseRequest): void {
    if (req.nodeid === ROOT_INO) return this.connection.reply(req.unique, [attrOut(this.rootAttr(), ROOT_TIMEOUT_S)]);
    const node = this.node(req);
    if (node) this.connection.reply(req.unique, [attrOut(node, this.attrTimeout)]);
  }

  private readlink(req: FuseRequest): void {
    const node = this.node(req);
    if (!node) return;
    if (node.linkname === undefined) return this.fail(req, Errno.EINVAL);
    this.connection.reply(req.unique, [Buffer.from(node.linkname)]);
  }

  private open(req: FuseRequest, dir: boolean): void {
    const flags = req.body.readUInt32LE(0);
    if (req.nodeid === ROOT_INO) return dir ? this.connection.reply(req.unique, [openOut(0)]) : this.fail(req, Errno.EISDIR);
    const node = this.node(req);
    if (!node) return;
    if (dir !== Boolean(node.children)) return this.fail(req, dir ? Errno.ENOTDIR : Errno.EISDIR);
    if ((flags & O_ACCMODE) !== 0 || flags & O_TRUNC) return this.fail(req, Errno.EROFS);
    // Zero-message opens (FUSE_NO_OPEN_SUPPORT, every kernel since protocol 7.23): ENOSYS counts as
    // success and the kernel sends no OPEN or RELEASE for files again, two requests fewer per file.
    if (!dir) return this.fail(req, Errno.ENOSYS);
    this.connection.reply(req.unique, [openOut(FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR)]);
  }

  private read(req: FuseRequest): void {
    const node = this.node(req);
    if (!node) return;
    if (node.children) return this.fail(req, Errno.EISDIR);
    const offset = Number(req.body.readBigUInt64LE(8));
    const size = req.body.readUInt32LE(16);
    const end = Math.min(node.size, offset + size);
    if (!node.data || offset >= end) return this.connection.reply(req.unique);
    const n = end - offset;
    const ac = new AbortController();
    const unique = req.unique;
    this.inflight.set(unique, ac);
    // the first read of a file: the whole file, early, in one request that this read then joins
    // (the loader and interpreters read files almost whole)
    const tree = node.path === "" ? this.layers.get(node.layer) : undefined;
    if (tree && node === tree.stream) this.startStreamRead(tree, offset);
    else if (node.data.readingFile && !this.filesStarted.has(node)) {
      this.filesStarted.add(node);
      node.data.readingFile(node.dataOffset, node.size, node.dataOffset + offset);
    }
    let pending: Promise<Buffer>;
    try {
      pending = node.data.read(node.dataOffset + offset, n, { signal: ac.signal });
    } catch (err) {
      pending = Promise.reject(err as Error);
    }
    pending.then(
      (buf) => {
        if (this.inflight.get(unique) !== ac) return;
        this.inflight.delete(unique);
        if (buf.length < n) throw new ShoalError("SHOAL_ERR_SHORT_READ", `layer data returned ${buf.length} of ${n} bytes`);
        this.counters.bytesRead += n;
        this.connection.reply(unique, [buf.length === n ? buf : buf.subarray(0, n)]);
      },
    ).catch((err: unknown) => {
      if (this.inflight.get(unique) === ac) this.inflight.delete(unique);
      else if (ac.signal.aborted) return;
      this.fail(req, this.errnoFor(err, node));
    });
  }

  /**
   * A read of a layer's stream (block mode) starts the file it is for. The
   * page cache sends it from the page holding the file's first block and
   * reads ahead past the file, so the file is the first one whose data
   * starts in that page (a page often also holds a small file's start and
   * the next one's, or the tail of the one before); else the file the read
   * starts inside (a later read of a big file).
   */
  private startStreamRead(tree: LayerTree, offset: number): void {
    const page = tree.filesIn(offset, STREAM_PAGE);
    const file = page.find((f) => f.dataOffset >= offset) ?? page[0];
    if (!file?.data?.readingFile || this.filesStarted.has(file)) return;
    this.filesStarted.add(file);
    file.data.readingFile(file.dataOffset, file.size, Math.max(file.dataOffset, offset));
  }

  /** Map a data error to errno, once, at this edge. */
  private errnoFor(err: unknown, node: FsNode): number {
    const name = errnoNameOf(err);
    if (name === "EIO") this.log.warn({ err, layer: node.layer, path: node.path }, "reading layer data failed");
    return Errno[name];
  }

  private readdir(req: FuseRequest, plus: boolean): void {
    const offset = Number(req.body.readBigUInt64LE(8));
    const size = req.body.readUInt32LE(16);
    let self: Attr;
    let listing: { names: Buffer[]; nodes: Attr[] };
    if (req.nodeid === ROOT_INO) {
      const trees = [...this.layers.values()];
      self = this.rootAttr();
      listing = { names: trees.map((t) => Buffer.from(t.id)), nodes: trees.map((t) => t.root) };
    } else {
      const node = this.node(req);
      if (!node) return;
      if (!node.children) return this.fail(req, Errno.ENOTDIR);
      self = node;
      listing = node.listing ??= { names: [...node.children.keys()].map((k) => Buffer.from(k)), nodes: [...node.children.values()] };
    }
    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    const total = listing.names.length + 2;
    for (let k = offset; k < total; k++) {
      const name = k === 0 ? DOT : k === 1 ? DOTDOT : listing.names[k - 2]!;
      const attr = k < 2 ? self : listing.nodes[k - 2]!;
      const need = plus ? direntplusSize(name.length) : direntSize(name.length);
      if (pos + need > size) break;
      if (plus) {
        // "." and ".." carry no entry (node id 0): the kernel skips them.
        writeEntryOut(out, pos, k < 2 ? undefined : attr, this.entryTimeout, this.attrTimeout);
        pos += 128;
      }
      pos = writeDirent(out, pos, attr.ino, k + 1, (attr.mode >> 12) & 0xf, name);
    }
    this.connection.reply(req.unique, [out.subarray(0, pos)]);
  }

  private getxattr(req: FuseRequest): void {
    if (req.nodeid === ROOT_INO) return this.fail(req, Errno.ENODATA);
    const node = this.node(req);
    if (!node) return;
    const size = req.body.readUInt32LE(0);
    const value = node.xattrs?.get(cString(req.body, 8));
    if (!value) return this.fail(req, Errno.ENODATA);
    if (size === 0) return this.connection.reply(req.unique, [xattrSizeOut(value.length)]);
    if (value.length > size) return this.fail(req, Errno.ERANGE);
    this.connection.reply(req.unique, [value]);
  }

  private listxattr(req: FuseRequest): void {
    const size = req.body.readUInt32LE(0);
    const node = req.nodeid === ROOT_INO ? undefined : this.node(req);
    if (!node && req.nodeid !== ROOT_INO) return;
    const list = Buffer.from([...(node?.xattrs?.keys() ?? [])].map((k) => `${k}\0`).join(""));
    if (size === 0) return this.connection.reply(req.unique, [xattrSizeOut(list.length)]);
    if (list.length > size) return this.fail(req, Errno.ERANGE);
    this.connection.reply(req.unique, [list]);
  }

  private statfs(req: FuseRequest): void {
    let bytes = 0;
    for (const t of this.layers.values()) bytes += t.fileBytes;
    this.connection.reply(req.unique, [statfsOut({ blocks: Math.ceil(bytes / 4096), files: this.nodes.size + 1 })]);
  }
}

/** Layer slots of one FUSE connection: slot by layer id, and the next free one (slots are never reused). */
interface SlotTable {
  next: number;
  ids: Record<string, number>;
}

function parseSlotTable(state: unknown): SlotTable | undefined {
  const s = state as Partial<SlotTable> | undefined;
  if (!s || typeof s.next !== "number" || typeof s.ids !== "object" || s.ids === null) return undefined;
  return { next: s.next, ids: { ...s.ids } };
}
