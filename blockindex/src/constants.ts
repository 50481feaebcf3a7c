/** Limits of the lazy layer format, in a module of their own so that a command line can show them without loading the format. */

/** Uncompressed bytes per chunk unless a conversion says otherwise. */
export const DEFAULT_CHUNK_SIZE = 256 * 1024;
/** Smallest chunk size a conversion accepts. */
export const MIN_CHUNK_SIZE = 4096;
/** Largest chunk size a conversion accepts. */
export const MAX_CHUNK_SIZE = 64 << 20;
