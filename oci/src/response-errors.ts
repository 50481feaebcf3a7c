/** Turning failed registry responses into `RegistryError`s (the one place HTTP statuses become codes). */
import type { Readable } from "node:stream";
import { closeBody } from "./body.ts";
import { MAX_ERROR_BODY_SIZE } from "./constants.ts";
import { RegistryError, type RegistryErrorCode, type RegistryErrorDetail } from "./errors.ts";

/** Reads a registry error body (`{"errors":[{code,message}]}`), tolerating anything else. Reads at most 64 KiB. */
export async function readErrorDetails(body: Readable): Promise<RegistryErrorDetail[]> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= MAX_ERROR_BODY_SIZE) break;
    }
  } catch {
    // the details are a courtesy; the status says enough
  } finally {
    closeBody(body);
  }
  return parseErrorDetails(Buffer.concat(chunks).subarray(0, MAX_ERROR_BODY_SIZE).toString("utf8"));
}

/** Extracts `{code, message}` pairs from a registry error JSON text; `[]` when it is not one. */
export function parseErrorDetails(text: string): RegistryErrorDetail[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return [];
  }
  const errors = (doc as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];
  return errors
    .filter((e): e is { code?: unknown; message?: unknown } => typeof e === "object" && e !== null)
    .map((e) => ({
      code: typeof e.code === "string" ? e.code.slice(0, 100) : "UNKNOWN",
      message: typeof e.message === "string" ? e.message.slice(0, 300) : "",
    }));
}

/** The `RegistryErrorCode` for a final (non-retried) error status. */
export function codeForStatus(status: number): RegistryErrorCode {
  if (status === 401) return "SHOAL_ERR_REGISTRY_UNAUTHORIZED";
  if (status === 403) return "SHOAL_ERR_REGISTRY_DENIED";
  if (status === 404) return "SHOAL_ERR_REGISTRY_NOT_FOUND";
  if (status === 416) return "SHOAL_ERR_RANGE_NOT_SATISFIABLE";
  if (status >= 500) return "SHOAL_ERR_REGISTRY_UNAVAILABLE";
  if (status >= 400) return "SHOAL_ERR_REGISTRY_REJECTED";
  return "SHOAL_ERR_REGISTRY_PROTOCOL";
}

/** `code: message; code: message` for error messages. */
export function describeDetails(details: RegistryErrorDetail[]): string {
  return details.map((d) => (d.message ? `${d.code}: ${d.message}` : d.code)).join("; ");
}

/** A `RegistryError` for a response whose status the caller did not expect; reads (a bounded part of) the body. */
export async function errorFromResponse(what: string, status: number, body: Readable): Promise<RegistryError> {
  const details = await readErrorDetails(body);
  const desc = describeDetails(details);
  return new RegistryError(codeForStatus(status), `${what}: HTTP ${status}${desc ? ` (${desc})` : ""}`, { status, details });
}
