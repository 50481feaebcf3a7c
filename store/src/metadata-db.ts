import { join } from "node:path";
import { ShoalError } from "@shoal/base";
import { Level } from "level";

/**
 * Open the LevelDB metadata database of a daemon's state directory
 * (`root/meta`). LevelDB takes a lock on it, so a second daemon on the same
 * root fails here: with `SHOAL_ERR_ROOT_IN_USE`, naming the root, rather
 * than LevelDB's own words.
 */
export async function openMetadataDb(root: string, daemon: string): Promise<Level<string, string>> {
  const level = new Level<string, string>(join(root, "meta"), { keyEncoding: "utf8", valueEncoding: "utf8" });
  try {
    await level.open();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    if (cause?.code === "LEVEL_LOCKED") throw new ShoalError("SHOAL_ERR_ROOT_IN_USE", `another ${daemon} holds ${root}: stop it first, or give this one another --root`, { cause: err });
    throw err;
  }
  return level;
}
