import { ShoalError } from "@shoal/base";

/**
 * The file system holding the chunk store is full (ENOSPC / EDQUOT), even
 * after evicting unpinned chunks once. Nothing of the failed put is visible
 * and no temp file is left; the store stays usable.
 */
export class DiskFullError extends ShoalError {
  /** Digest of the chunk that could not be stored. */
  readonly digest: string;
  constructor(digest: string, bytes: number, options?: { cause?: unknown }) {
    super("SHOAL_ERR_DISK_FULL", `chunk store: no space left to store ${digest} (${bytes} bytes)`, options);
    this.digest = digest;
  }
}

/** The chunk store was used after `close()`. */
export class StoreClosedError extends ShoalError {
  constructor() {
    super("SHOAL_ERR_STORE_CLOSED", "chunk store is closed");
  }
}
