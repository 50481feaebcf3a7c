/** Values a PAX extended header overrides in the header that follows it. */
export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  mtimeSec?: number;
  mtimeNsec?: number;
  xattrs?: Map<string, Uint8Array>;
}

const MAX_RECORDS = 10_000;
const NUMERIC = /^[0-9]+$/;
const TIME = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

/**
 * Parse PAX extended header records (`"<len> <key>=<value>\n"`), as in
 * POSIX pax and GNU tar. `fail(message)` builds the error to throw for a
 * malformed record. Unknown keys are ignored; `GNU.sparse.*` is rejected.
 */
export function parsePaxRecords(data: Buffer, fail: (message: string) => Error): PaxOverrides {
  const out: PaxOverrides = {};
  let pos = 0;
  let count = 0;
  while (pos < data.length) {
    if (data[pos] === 0) break; // trailing NUL padding some writers leave
    if (++count > MAX_RECORDS) throw fail(`more than ${MAX_RECORDS} PAX records`);
    const space = data.indexOf(0x20, pos);
    if (space < 0 || space - pos > 20) throw fail(`PAX record at ${pos} has no length`);
    const lenText = data.toString("latin1", pos, space);
    if (!NUMERIC.test(lenText)) throw fail(`PAX record at ${pos} has a bad length ${JSON.stringify(lenText)}`);
    const len = Number(lenText);
    const end = pos + len;
    if (len <= space - pos + 1 || end > data.length || data[end - 1] !== 0x0a) {
      throw fail(`PAX record at ${pos} has a bad length ${len}`);
    }
    const eq = data.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end) throw fail(`PAX record at ${pos} has no '='`);
    const key = data.toString("utf8", space + 1, eq);
    const raw = data.subarray(eq + 1, end - 1);
    apply(out, key, raw, fail);
    pos = end;
  }
  return out;
}

function apply(out: PaxOverrides, key: string, raw: Buffer, fail: (message: string) => Error): void {
  const text = () => raw.toString("utf8");
  const int = () => {
    const t = text();
    if (!NUMERIC.test(t) || Number(t) > Number.MAX_SAFE_INTEGER) throw fail(`PAX ${key} is not a valid number: ${JSON.stringify(t.slice(0, 40))}`);
    return Number(t);
  };
  switch (key) {
    case "path": out.path = text(); return;
    case "linkpath": out.linkpath = text(); return;
    case "size": out.size = int(); return;
    case "uid": out.uid = int(); return;
    case "gid": out.gid = int(); return;
    case "mtime": {
      const m = TIME.exec(text());
      if (!m) throw fail(`PAX mtime is not a valid time: ${JSON.stringify(text().slice(0, 40))}`);
      const sec = Number(m[2]);
      if (sec > Number.MAX_SAFE_INTEGER) throw fail("PAX mtime out of range");
      const frac = (m[3] ?? "").slice(0, 9).padEnd(9, "0");
      let nsec = Number(frac);
      let s = m[1] ? -sec : sec;
      if (m[1] && nsec > 0) { s -= 1; nsec = 1e9 - nsec; }
      out.mtimeSec = s;
      out.mtimeNsec = nsec;
      return;
    }
  }
  if (key.startsWith("SCHILY.xattr.")) {
    out.xattrs ??= new Map();
    out.xattrs.set(key.slice("SCHILY.xattr.".length), new Uint8Array(raw));
  } else if (key.startsWith("LIBARCHIVE.xattr.")) {
    out.xattrs ??= new Map();
    let name: string;
    try {
      name = decodeURIComponent(key.slice("LIBARCHIVE.xattr.".length));
    } catch {
      throw fail(`PAX key ${JSON.stringify(key.slice(0, 60))} is not valid URL encoding`);
    }
    out.xattrs.set(name, new Uint8Array(Buffer.from(raw.toString("latin1"), "base64")));
  } else if (key.startsWith("GNU.sparse.")) {
    throw fail("sparse files (GNU.sparse.*) are not supported");
  }
}
