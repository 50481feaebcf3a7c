/**
 * containerd's filter syntax, as `List` requests carry it
 * (containerd/filters): a filter is selectors joined by `,` (all must
 * match); a request's filters are alternatives (any may match).
 *
 *   selector  := fieldpath [ op value ]      (a field path alone: present and not empty)
 *   fieldpath := field { "." field }         (e.g. `labels."containerd.io/snapshot.ref"`)
 *   field     := [A-Za-z0-9_]+ | quoted
 *   op        := "==" | "!=" | "~="          (`~=`: the value is a regular expression)
 *   value     := quoted | unquoted text up to the next ","
 *   quoted    := "..." | '...' | `...`       (backslash escapes in "...")
 */
import { BadRequestError } from "@shoal/base";
import { linearRegExp } from "./linear-regexp.ts";

/** The longest filter taken. */
export const MAX_FILTER_LENGTH = 4096;

/** One selector of a filter. */
export interface Selector {
  path: string[];
  op?: "==" | "!=" | "~=";
  value?: string;
  /** For `~=`: the compiled expression. */
  regex?: RegExp;
}

/** A parsed filter: every selector must match. */
export type Filter = Selector[];

/** Fields of a thing being filtered: `path` to its value (undefined: absent). */
export type FieldLookup = (path: string[]) => string | undefined;

function unquote(s: string, at: number, src: string): { value: string; end: number } {
  const q = s[at]!;
  let out = "";
  let i = at + 1;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === q) return { value: out, end: i + 1 };
    if (c === "\\" && q === '"' && i + 1 < s.length) {
      const n = s[++i]!;
      out += n === "n" ? "\n" : n === "t" ? "\t" : n;
    } else out += c;
  }
  throw new BadRequestError(`filter ${JSON.stringify(src.slice(0, 200))}: unterminated quote`);
}

/** Parse one filter string; throws `BadRequestError` for malformed input. */
export function parseFilter(src: string): Filter {
  if (src.length > MAX_FILTER_LENGTH) throw new BadRequestError(`a filter is longer than ${MAX_FILTER_LENGTH} characters`);
  const out: Filter = [];
  let i = 0;
  const s = src;
  const fail = (why: string): never => {
    throw new BadRequestError(`filter ${JSON.stringify(src.slice(0, 200))}: ${why}`);
  };
  while (i < s.length) {
    while (s[i] === " ") i++;
    const path: string[] = [];
    for (;;) {
      if (s[i] === '"' || s[i] === "'" || s[i] === "`") {
        const q = unquote(s, i, src);
        path.push(q.value);
        i = q.end;
      } else {
        const m = /^[A-Za-z0-9_]+/.exec(s.slice(i));
        if (!m) fail(`a field name was expected at ${i}`);
        path.push(m![0]);
        i += m![0].length;
      }
      if (s[i] !== ".") break;
      i++;
    }
    while (s[i] === " ") i++;
    const sel: Selector = { path };
    const op = s.slice(i, i + 2);
    if (op === "==" || op === "!=" || op === "~=") {
      i += 2;
      while (s[i] === " ") i++;
      let value: string;
      if (s[i] === '"' || s[i] === "'" || s[i] === "`") {
        const q = unquote(s, i, src);
        value = q.value;
        i = q.end;
      } else {
        const end = s.indexOf(",", i);
        value = (end < 0 ? s.slice(i) : s.slice(i, end)).trim();
        i = end < 0 ? s.length : end;
      }
      sel.op = op;
      sel.value = value;
      if (op === "~=") {
        try {
          sel.regex = linearRegExp(value.replace(/^\/(.*)\/$/, "$1"));
        } catch (err) {
          throw new BadRequestError(`filter ${JSON.stringify(src.slice(0, 200))}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    while (s[i] === " ") i++;
    out.push(sel);
    if (i >= s.length) break;
    if (s[i] !== ",") fail(`"," or the end was expected at ${i}`);
    i++;
  }
  if (out.length === 0) fail("empty");
  return out;
}

/** True when `lookup` satisfies every selector of `filter`. */
export function matches(filter: Filter, lookup: FieldLookup): boolean {
  return filter.every((sel) => {
    const v = lookup(sel.path);
    switch (sel.op) {
      case undefined:
        return v !== undefined && v !== "";
      case "==":
        return v === sel.value;
      case "!=":
        return v !== sel.value;
      case "~=":
        return v !== undefined && sel.regex!.test(v);
    }
  });
}

/** Parse a request's filters (alternatives); none matches everything. */
export function parseFilters(srcs: readonly string[]): (lookup: FieldLookup) => boolean {
  const filters = srcs.filter((f) => f.trim() !== "").map(parseFilter);
  return (lookup) => filters.length === 0 || filters.some((f) => matches(f, lookup));
}
