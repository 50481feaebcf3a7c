/**
 * zlib's output buffer for an async inflate whose output size is known.
 * Node's async zlib fills `chunkSize` bytes (default 16 KiB) per pass on
 * the thread pool and comes back to the main thread after each one, then
 * concatenates the pieces there: a 256 KiB chunk costs 17 such returns. One
 * buffer that holds the whole output makes it one (a third of the main
 * thread's time, half the wall time, in a throwaway measurement of 64
 * chunks). Outputs above `MAX_WHOLE_OUTPUT` keep the default pieces.
 */
export const MAX_WHOLE_OUTPUT = 32 << 20;

/** The `chunkSize` zlib option for an inflate giving at most `outputBytes` bytes (undefined: zlib's default). */
export function wholeOutputChunkSize(outputBytes: number): number | undefined {
  if (!Number.isSafeInteger(outputBytes) || outputBytes < 0 || outputBytes > MAX_WHOLE_OUTPUT) return undefined;
  // a little room past the end, so that zlib sees the stream end in the same pass
  return outputBytes + 64;
}
