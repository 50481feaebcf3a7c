/** Parsing `WWW-Authenticate` challenges (RFC 7235) as registries send them. */

/** A bearer-token challenge: fetch a token from `realm`. */
export interface BearerChallenge {
  scheme: "bearer";
  realm: string;
  service?: string;
  /** Space-separated scopes the registry asks for, e.g. `repository:a/b:pull`. */
  scope?: string;
  /** `error` parameter (e.g. `insufficient_scope`, `invalid_token`), if any. */
  error?: string;
}

/** A basic-auth challenge. */
export interface BasicChallenge {
  scheme: "basic";
  realm?: string;
}

/** A challenge shoal can answer. */
export type AuthChallenge = BearerChallenge | BasicChallenge;

interface RawChallenge {
  scheme: string;
  params: Map<string, string>;
}

const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/;

/**
 * Parses a `WWW-Authenticate` header value into the challenges shoal can
 * answer (Bearer with a realm, Basic), in header order. Several challenges
 * may share one header, separated by commas. Unknown schemes and Bearer
 * challenges without a realm are dropped; junk yields `[]`, never a throw.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  const values = Array.isArray(header) ? header : [header];
  const out: AuthChallenge[] = [];
  for (const value of values) {
    for (const raw of parseRaw(value)) {
      if (raw.scheme === "bearer") {
        const realm = raw.params.get("realm");
        if (!realm) continue;
        const c: BearerChallenge = { scheme: "bearer", realm };
        const service = raw.params.get("service");
        const scope = raw.params.get("scope");
        const error = raw.params.get("error");
        if (service !== undefined) c.service = service;
        if (scope !== undefined) c.scope = scope;
        if (error !== undefined) c.error = error;
        out.push(c);
      } else if (raw.scheme === "basic") {
        const c: BasicChallenge = { scheme: "basic" };
        const realm = raw.params.get("realm");
        if (realm !== undefined) c.realm = realm;
        out.push(c);
      }
    }
  }
  return out;
}

function parseRaw(input: string): RawChallenge[] {
  const out: RawChallenge[] = [];
  let s = input;
  let current: RawChallenge | undefined;
  const skip = (): void => {
    s = s.replace(/^[\s,]+/, "");
  };
  skip();
  while (s.length > 0) {
    const tok = TOKEN_RE.exec(s);
    if (!tok) return out; // junk: stop, keep what parsed
    const word = tok[0];
    const after = s.slice(word.length);
    const eq = /^\s*=\s*/.exec(after);
    if (eq && current) {
      // auth-param: key = token / quoted-string
      s = after.slice(eq[0].length);
      let value: string;
      if (s.startsWith('"')) {
        let i = 1;
        value = "";
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        s = s.slice(i + 1);
      } else {
        value = /^[^,\s]*/.exec(s)![0];
        s = s.slice(value.length);
      }
      current.params.set(word.toLowerCase(), value);
    } else {
      // new challenge: scheme [token68]
      current = { scheme: word.toLowerCase(), params: new Map() };
      out.push(current);
      s = after.replace(/^\s+/, "");
      const t68 = /^[A-Za-z0-9\-._~+/]+=*(?=\s*(?:,|$))/.exec(s);
      if (t68 && !/^[A-Za-z0-9\-._~+/]+\s*=\s*[^\s,=]/.test(s)) s = s.slice(t68[0].length);
    }
    skip();
  }
  return out;
}
