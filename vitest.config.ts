import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["*/test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration tests start real registries and FUSE mounts; keep them from
    // fighting over two cores.
    fileParallelism: false,
    pool: "forks",
  },
});
