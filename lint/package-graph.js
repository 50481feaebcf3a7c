// @ts-check
/**
 * The package graph of shoal, and the ESLint rule that holds the code to it.
 *
 * Each top-level folder is a package with a floor; a package's library code
 * (`src/`, `testsuite/`) may import only the packages its row names, and
 * declares each in its package.json. Tests may also import their own
 * package, packages on lower floors and the testkit. No file reaches into
 * another package by a relative path. docs/architecture.md draws this table.
 */
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Every package: its floor (imports point to lower floors only), what its
 * library code may import, and what it may import only lazily (`import()`
 * or `import type`), so that loading it does not load them.
 * @type {Record<string, { floor: number; imports: string[]; lazy?: string[] }>}
 */
export const PACKAGES = {
  base: { floor: 0, imports: [] },
  blockindex: { floor: 1, imports: ["base"] },
  erofs: { floor: 2, imports: ["base"] },
  oci: { floor: 2, imports: ["base"] },
  store: { floor: 2, imports: ["base", "blockindex"] },
  p2p: { floor: 2, imports: ["base", "blockindex"] },
  service: { floor: 2, imports: ["base"] },
  swarm: { floor: 3, imports: ["base", "oci"] },
  fetch: { floor: 4, imports: ["base", "blockindex", "oci", "swarm"] },
  convert: { floor: 5, imports: ["base", "blockindex", "oci"] },
  supernode: { floor: 5, imports: ["base", "blockindex", "oci", "store", "p2p", "service", "swarm"] },
  snapshotter: { floor: 5, imports: ["base", "blockindex"] },
  "registry-proxy": { floor: 5, imports: ["base", "oci", "service", "swarm"] },
  agent: { floor: 6, imports: ["base", "blockindex", "erofs", "oci", "store", "p2p", "service", "swarm", "fetch", "snapshotter", "registry-proxy"], lazy: ["p2p"] },
  cli: { floor: 7, imports: ["base", "blockindex", "erofs", "oci", "p2p", "service", "swarm", "fetch", "convert", "supernode", "snapshotter", "registry-proxy", "agent"] },
  testkit: { floor: 1, imports: ["base"] },
  bench: { floor: 8, imports: ["base", "blockindex", "erofs", "oci", "store", "p2p", "service", "swarm", "fetch", "convert", "supernode", "snapshotter", "registry-proxy", "agent", "cli", "testkit"] },
};

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

/** @type {Map<string, any>} */
const manifests = new Map();
/** The package.json of folder `pkg` (undefined for a folder that is not a package). */
function manifest(pkg) {
  if (!manifests.has(pkg)) {
    const file = join(ROOT, pkg, "package.json");
    manifests.set(pkg, existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined);
  }
  return manifests.get(pkg);
}
const root = () => manifest(".");

/** Package name of a bare specifier: `@scope/name` or `name`. */
function packageName(spec) {
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** @type {import("eslint").Rule.RuleModule} */
const rule = {
  meta: {
    type: "problem",
    docs: { description: "imports follow shoal's package graph (lint/package-graph.js) and are declared in package.json" },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const rel = relative(ROOT, file);
    if (rel.startsWith("..") || rel.split(sep).length < 2) return {};
    const [pkg, area] = rel.split(sep);
    const row = PACKAGES[pkg];
    const m = manifest(pkg);
    // library code: what others import (src/, and the conformance suites in testsuite/)
    const isLib = area === "src" || area === "testsuite";
    // what runs in production must be a dependency; tests and suites may use dev dependencies
    const declared = new Set([
      ...Object.keys(m?.dependencies ?? {}), ...Object.keys(m?.peerDependencies ?? {}),
      ...(area === "src" ? [] : [...Object.keys(m?.devDependencies ?? {}), ...Object.keys(root()?.devDependencies ?? {})]),
    ]);
    /** @param {any} node @param {string} spec @param {boolean} lazy */
    const check = (node, spec, lazy) => {
      if (spec.startsWith(".")) {
        const target = relative(ROOT, resolve(dirname(file), spec));
        if (target.split(sep)[0] !== pkg) context.report({ node, message: `${rel} reaches into ${target.split(sep)[0]}/ by a relative path: import the package by its name and exports` });
        return;
      }
      if (BUILTINS.has(spec) || !m || !row) return;
      const name = packageName(spec);
      if (name.startsWith("@shoal/")) {
        const dep = name.slice("@shoal/".length);
        if (dep === pkg) {
          if (isLib) context.report({ node, message: `${pkg} imports itself by name; use a relative import` });
          return;
        }
        const target = PACKAGES[dep];
        if (!target) return context.report({ node, message: `${spec}: no such shoal package in lint/package-graph.js` });
        const allowed = row.imports.includes(dep) || (!isLib && (dep === "testkit" || target.floor < row.floor));
        if (!allowed) return context.report({ node, message: `${pkg} may not import @shoal/${dep} (${isLib ? "library code imports only" : "tests import only"} ${isLib ? row.imports.join(", ") || "nothing of ours" : "lower floors and the testkit"}; see lint/package-graph.js)` });
        if (isLib && row.lazy?.includes(dep) && !lazy) return context.report({ node, message: `${pkg} loads @shoal/${dep} only when it is needed: use import() or import type` });
        const sub = spec.slice(name.length) ? `.${spec.slice(name.length)}` : ".";
        const exports = manifest(dep)?.exports ?? {};
        if (!(sub in exports)) context.report({ node, message: `@shoal/${dep} does not export ${sub}` });
      }
      if (!declared.has(name)) context.report({ node, message: `${pkg}/package.json does not declare ${name}, which ${rel} imports` });
    };
    return {
      ImportDeclaration: (node) => check(node, String(node.source.value), node.importKind === "type"),
      ExportNamedDeclaration: (node) => node.source && check(node, String(node.source.value), node.exportKind === "type"),
      ExportAllDeclaration: (node) => check(node, String(node.source.value), node.exportKind === "type"),
      ImportExpression: (node) => node.source.type === "Literal" && check(node, String(node.source.value), true),
    };
  },
};

export default { rules: { "package-graph": rule } };
