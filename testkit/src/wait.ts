/**
 * Poll `fn` every 200 ms until it answers something other than undefined,
 * and return that; reject naming `what` after `timeoutMs` (a bound against
 * hangs, not an assertion about speed).
 */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
