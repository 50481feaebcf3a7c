/**
 * Registry credentials on the supernode API: an agent passes the caller's
 * registry credentials as `Authorization: Basic`, and the supernode checks
 * them with the registry before it serves cached bytes of a private image.
 */
import { BadRequestError } from "@shoal/base";
import type { Credentials } from "@shoal/oci";

/**
 * Parse an `Authorization` header: `Basic <base64 user:password>` gives
 * credentials, no header gives undefined, any other form is a
 * `BadRequestError` (the header is never echoed).
 */
export function parseBasicAuth(header: string | undefined): Credentials | undefined {
  if (header === undefined || header === "") return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m) throw new BadRequestError("Authorization: only Basic credentials are passed through to registries");
  const text = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (colon <= 0) throw new BadRequestError("Authorization: malformed Basic credentials");
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The `Authorization` header value that carries `credentials`. */
export function basicAuthorization(credentials: Credentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
}
