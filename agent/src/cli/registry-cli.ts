import { parseReference, RegistryClient, type ImageReference } from "@shoal/oci";
import type { RegistryOptions } from "./common.ts";
import { cliLogger } from "./logger.ts";

/** A client for the registry of `ref`, with docker config credentials. */
export function clientFor(ref: ImageReference, opts: RegistryOptions): RegistryClient {
  return new RegistryClient({ logger: cliLogger() }, { registry: ref.registry, plainHttp: opts.plainHttp === true, userAgent: "shoal/0.1" });
}

/** Parse a reference given on the command line (typed error when malformed). */
export function imageArg(s: string): ImageReference {
  return parseReference(s);
}
