/**
 * Checks that dependencies point one way (`deno task check` runs it). Data
 * flows CLI → API → engine → cgroup/shim, and the imports follow:
 *
 * - `common/` (shared parsing, the args framework, JobError) imports nothing
 *   of ours, so every layer may use it.
 * - `version/`, `shim/`, `pki/` and the generated `proto/` are leaves: they
 *   import only `common/` (and `proto/` itself).
 * - `compat/`, the workarounds that patch grpc-js or Deno internals, is a
 *   leaf too, used by `server/` and `client/`; its tests may drive them
 *   through the server's TLS code.
 * - `cgroup/`, the kernel layer, must not import `server/` or `client/`.
 * - `server/` must not import `client/`, and imports `cgroup/` only through
 *   `cgroup/mod.ts`; its tests may also use `cgroup/testing.ts`.
 * - `client/` must not import `server/` or `cgroup/`.
 * - `tests/`, `tools/` and `main.ts` sit on top and may import anything.
 *
 * Only relative specifiers are ours; `node:` and `npm:` ones are not checked,
 * and the root `deno.json` (where `version/` reads the version) is allowed.
 *
 * ```sh
 * deno run --allow-read tools/check_imports.ts
 * ```
 * @module
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";

/** Which top-level folders each folder may import (besides itself). */
export const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  common: [],
  version: ["common"],
  shim: ["common"],
  pki: ["common"],
  proto: ["common"],
  compat: ["common"],
  cgroup: ["common", "shim", "version", "pki", "proto"],
  server: ["common", "cgroup", "shim", "version", "pki", "proto", "compat"],
  client: ["common", "version", "pki", "proto", "compat"],
};

/** Folders that are never scanned (build output, generated certificates). */
const SKIP = new Set(["node_modules", "out", "certs", ".git"]);

/** One import against the direction. */
export interface Violation {
  /** The importing file, relative to the root. */
  file: string;
  /** The specifier as written. */
  specifier: string;
  /** Why it is not allowed. */
  reason: string;
}

const SPECIFIER =
  /(?:^|[\s;}])(?:import|export)\s*(?:type\s+)?(?:[^"'`;]*?\sfrom\s*)?["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The module specifiers a TypeScript source imports or re-exports. */
export function importSpecifiers(source: string): string[] {
  const found: string[] = [];
  for (const match of source.matchAll(SPECIFIER)) {
    found.push(match[1] ?? match[2]);
  }
  return found;
}

function tsFiles(root: string, dir = root): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...tsFiles(root, path));
    else if (entry.isFile() && entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

function isTestFile(file: string): boolean {
  return /_test(_util)?\.ts$/.test(file);
}

/** Checks one import of `file` (both relative to the root). */
function problem(file: string, target: string): string | undefined {
  const from = file.split("/")[0];
  const to = target.split("/")[0];
  if (to === "..") return "it leaves the repository";
  // The project's own deno.json (version/ reads the version from it) is
  // configuration, not a layer.
  if (target === "deno.json") return undefined;
  const allowed = ALLOWED[from];
  if (allowed === undefined || from === to) return undefined;
  if (from === "compat" && to === "server" && isTestFile(file)) {
    return undefined;
  }
  if (!allowed.includes(to)) {
    return `${from}/ may import only ${
      allowed.length
        ? allowed.map((d) => `${d}/`).join(", ")
        : "nothing of ours"
    }`;
  }
  if (
    from === "server" && to === "cgroup" && target !== "cgroup/mod.ts" &&
    !(isTestFile(file) && target === "cgroup/testing.ts")
  ) {
    return "server/ imports cgroup/ only through cgroup/mod.ts";
  }
  return undefined;
}

/** Lists every import under `root` that points against the direction. */
export function checkImports(root: string): Violation[] {
  const violations: Violation[] = [];
  for (const path of tsFiles(root).sort()) {
    const file = relative(root, path);
    for (const specifier of importSpecifiers(readFileSync(path, "utf8"))) {
      if (!specifier.startsWith(".")) continue;
      const target = normalize(join(dirname(file), specifier));
      const reason = problem(file, target);
      if (reason) violations.push({ file, specifier, reason });
    }
  }
  return violations;
}

if (import.meta.main) {
  const root = join(dirname(new URL(import.meta.url).pathname), "..");
  const violations = checkImports(root);
  for (const v of violations) {
    console.error(`${v.file}: import "${v.specifier}": ${v.reason}`);
  }
  if (violations.length > 0) {
    console.error(
      `${violations.length} import(s) point against the direction; see tools/check_imports.ts`,
    );
    Deno.exit(1);
  }
}
