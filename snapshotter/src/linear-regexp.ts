/**
 * Regular expressions from callers, run in linear time. containerd's
 * filters use Go's RE2, which never backtracks; JavaScript's default engine
 * does, so `^(a+)+$` against 30 `a`s and a `b` blocks the event loop for
 * seconds (the agent's FUSE answers wait with it). V8's linear engine
 * (`--enable-experimental-regexp-engine`, the `l` flag) is RE2's kind: no
 * backreferences or lookarounds, as in RE2. Patterns are bounded in size too.
 */
import { BadRequestError } from "@shoal/base";
import { setFlagsFromString } from "node:v8";

/** The longest pattern taken. */
export const MAX_PATTERN_LENGTH = 1024;

let enabled = false;

/** `pattern` compiled for V8's linear-time engine; `BadRequestError` when it is too long or needs backtracking. */
export function linearRegExp(pattern: string): RegExp {
  if (pattern.length > MAX_PATTERN_LENGTH) throw new BadRequestError(`a regular expression is longer than ${MAX_PATTERN_LENGTH} characters`);
  if (!enabled) {
    setFlagsFromString("--enable-experimental-regexp-engine");
    enabled = true;
  }
  try {
    return new RegExp(pattern, "l");
  } catch (err) {
    throw new BadRequestError(`bad regular expression (RE2 syntax, no backreferences or lookarounds): ${(err as Error).message}`, { cause: err });
  }
}
