/**
 * Conformance suites, as containerd's snapshotter test suite and libp2p's
 * interface compliance tests are: one list of checks per seam, run against
 * every implementation and every fake. A check throws when the subject
 * breaks the contract, so a suite can also be run by hand against a broken
 * subject to show that it fails.
 */
import { describe, it } from "vitest";

/** One check of a contract. */
export interface Check<S> {
  name: string;
  run(subject: S): Promise<void>;
}

/**
 * Register every check of `suite` as a vitest test under `title`; `make`
 * builds a fresh subject for each check and `done` releases it.
 */
export function describeSuite<S>(title: string, suite: readonly Check<S>[], make: () => Promise<S>, done?: (s: S) => Promise<void>): void {
  describe(title, () => {
    for (const check of suite) {
      it(check.name, async () => {
        const subject = await make();
        try {
          await check.run(subject);
        } finally {
          await done?.(subject);
        }
      });
    }
  });
}

/** The names of the checks of `suite` that `subject` fails (for showing that a suite catches a broken subject). */
export async function failedChecks<S>(suite: readonly Check<S>[], make: () => Promise<S>): Promise<string[]> {
  const failed: string[] = [];
  for (const check of suite) {
    try {
      await check.run(await make());
    } catch {
      failed.push(check.name);
    }
  }
  return failed;
}

/** Throws with `message` unless `ok`. */
export function assert(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(`contract broken: ${message}`);
}
