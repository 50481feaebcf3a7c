/**
 * The startup traces this supernode keeps for the agents (see
 * `@shoal/swarm` `StartupTrace`), in its database under
 * `trace!<registry>/<repo>@<manifest digest>`. The first well-formed trace
 * of an image is kept; later ones are answered `stored: false`. A trace
 * names layers and byte offsets only, never their contents, and is served
 * only to a caller whom the registry lets read every layer it names (the
 * access check of the chunk routes), so it tells no one about an image
 * they cannot pull.
 */
import { BadRequestError, ShoalError } from "@shoal/base";
import type { Credentials } from "@shoal/oci";
import { layerKey, parseStartupTrace, type LayerRef, type StartupTrace } from "@shoal/swarm";
import type { Logger } from "pino";
import type { AccessCheck } from "./access.ts";
import type { IndexDb } from "./index-cache.ts";

/** What the trace store reports to metrics. */
export interface TraceObserver {
  traceStored(): void;
  traceServed(): void;
}

/** Options of one call: the caller's registry credentials, its abort. */
export interface TraceCallOptions {
  credentials?: Credentials;
  signal?: AbortSignal;
}

/** See the module comment. */
export class StartupTraces {
  private readonly db: IndexDb;
  private readonly access: AccessCheck;
  private readonly logger: Logger;
  private readonly observer: TraceObserver | undefined;

  constructor(components: { db: IndexDb; access: AccessCheck; logger: Logger; observer?: TraceObserver }) {
    this.db = components.db;
    this.access = components.access;
    this.logger = components.logger.child({ component: "traces" });
    this.observer = components.observer;
  }

  /** The trace kept for `image` (`digest`: the manifest digest), once the caller may read every layer it names. */
  async get(image: LayerRef, opts: TraceCallOptions = {}): Promise<StartupTrace> {
    const text = await this.db.get(key(image));
    if (text === undefined) throw new ShoalError("SHOAL_ERR_NOT_FOUND", `no startup trace for ${image.repository}@${image.digest}`);
    const trace = parseStartupTrace(JSON.parse(text));
    await this.mayRead(image, trace, opts);
    this.observer?.traceServed();
    return trace;
  }

  /** Keep `body` as the trace of `image` unless one is kept already; true when stored. */
  async put(image: LayerRef, body: unknown, opts: TraceCallOptions = {}): Promise<boolean> {
    const trace = parseStartupTrace(body);
    if (trace.image !== image.digest) throw new BadRequestError(`startup trace: recorded on image ${trace.image}, sent for ${image.digest}`);
    if (trace.layers.length === 0) throw new BadRequestError("startup trace: names no layer");
    await this.mayRead(image, trace, opts);
    if ((await this.db.get(key(image))) !== undefined) return false;
    await this.db.put(key(image), JSON.stringify(trace));
    this.observer?.traceStored();
    this.logger.info({ image: `${image.registry}/${image.repository}@${image.digest}`, layers: trace.layers.length, ranges: trace.ranges.length }, "startup trace stored");
    return true;
  }

  /** Rejects unless the registry lets the caller read every layer of `trace` in `image`'s repository. */
  private async mayRead(image: LayerRef, trace: StartupTrace, opts: TraceCallOptions): Promise<void> {
    await Promise.all(trace.layers.map((digest) => this.access.check({ registry: image.registry, repository: image.repository, digest }, opts.credentials, opts.signal ? { signal: opts.signal } : {})));
  }
}

const key = (image: LayerRef) => `trace!${layerKey(image)}`;
