import { connect } from "node:net";

/** Resolves true once the unix socket at `path` accepts a connection, false when it refuses (or does not exist). */
export function socketAccepts(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
