/**
 * The live status page a daemon serves at `GET /` of its HTTP listener: one
 * self-contained HTML document (its script and style inline, nothing loaded
 * from elsewhere) that polls the daemon's JSON at `GET /v1/page` every second
 * and draws it. The shell (polling, DOM building, units, the rate chart) is
 * `web/shell.js` and `web/shell.css` of this package; each daemon adds the
 * script that draws its own data.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";

/** What a daemon puts on its status page. */
export interface StatusPage {
  /** The document: `statusPageHtml(...)`. */
  readonly html: string;
  /**
   * The page's data for one request (`GET /v1/page`), checked against the
   * request's credentials like the rest of the daemon's API: throws a
   * `ShoalError` (401/403) when the caller may not see it at all, and leaves
   * out what this caller may not see.
   */
  data(req: IncomingMessage): Promise<unknown>;
}

/** The path the page polls. */
export const STATUS_PAGE_DATA_PATH = "/v1/page";

const shell = { script: readWeb("shell.js"), style: readWeb("shell.css") };

function readWeb(name: string): string {
  return readFileSync(new URL(`../web/${name}`, import.meta.url), "utf8");
}

/** The page document: `title`, the shell, then `script` (the daemon's drawing code, which calls `shoal.start`). `NONCE` marks where the per-response nonce goes. */
export function statusPageHtml(title: string, script: string): string {
  const esc = title.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc}</title><style nonce="NONCE">${shell.style}</style></head>
<body><header><h1>${esc}</h1><span id="state" class="stale">connecting…</span></header><main id="main"></main>
<script nonce="NONCE">${shell.script}</script><script nonce="NONCE">${script}</script></body></html>
`;
}

/** The response headers and body of the page: a fresh nonce; scripts and styles only the page's own; data only from this origin; never framed or cached. */
export function statusPageResponse(html: string): { headers: Record<string, string>; body: string } {
  const nonce = randomBytes(16).toString("base64");
  return {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "cache-control": "no-store",
    },
    body: html.replaceAll("NONCE", nonce),
  };
}
