// @ts-check
import tseslint from "typescript-eslint";
import shoal from "./lint/package-graph.js";

/** Library code raises shoal's own errors only: a closed set of codes that every edge can translate. */
const onlyShoalErrors = {
  "no-restricted-syntax": ["error",
    { selector: "NewExpression[callee.name=/^(Error|TypeError|RangeError|SyntaxError|EvalError|URIError|AggregateError)$/]", message: "library code raises ShoalError (or a subclass) with a code from @shoal/base ERROR_CODES, not a plain Error" },
    { selector: "ClassDeclaration[superClass.name=/^(Error|TypeError|RangeError)$/]", message: "error classes extend ShoalError (@shoal/base), so their codes stay in the one set" },
  ],
  "no-throw-literal": "error",
};

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
  { plugins: { shoal }, rules: { "shoal/package-graph": "error" } },
  { files: ["*/src/**/*.ts"], rules: onlyShoalErrors },
  {
    // CLI entry points, scripts, benches and tests may print.
    files: ["cli/src/**", "scripts/**", "bench/**", "**/test/**", "testkit/**"],
    rules: { "no-console": "off" },
  },
  {
    // Test fixtures and benches may fail with plain errors: their callers are test runners.
    files: ["testkit/**", "bench/**"],
    rules: { "no-restricted-syntax": "off" },
  },
);
