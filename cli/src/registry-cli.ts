import { RegistryClientPool } from "@shoal/oci";
import type { RegistryOptions } from "./common.ts";
import { cliLogger } from "./logger.ts";

/** The registry clients of one command, with docker config credentials. */
export function registryClients(opts: RegistryOptions): RegistryClientPool {
  return new RegistryClientPool({ logger: cliLogger() }, { plainHttp: opts.plainHttp === true, userAgent: "shoal/0.1" });
}
