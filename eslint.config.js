// @ts-check
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", ".cache/**"] },
  ...tseslint.configs.recommended,
  {
    rules: {
      "no-console": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  {
    // CLI entry points, scripts, benches and tests may print.
    files: ["agent/src/cli/**", "scripts/**", "bench/**", "**/test/**", "testkit/**"],
    rules: { "no-console": "off" },
  },
);
