import assert from "node:assert/strict";
import { lintWorkflow, lintWorkflows } from "./lint_workflows.ts";

Deno.test("the repository's workflows are clean", async () => {
  const { files, findings } = await lintWorkflows();
  assert.deepEqual(files, [
    ".github/workflows/ci.yml",
    ".github/workflows/release.yml",
  ]);
  assert.deepEqual(findings, []);
});

Deno.test("a broken workflow is reported with its line and rule", async () => {
  const findings = await lintWorkflow(
    `on: push
jobs:
  build:
    runs-on: ubuntu-24.04
    steps:
      - run: echo \${{ github.no_such_field }}
  publish:
    needs: biuld
    runs-on: windows-3000
    steps:
      - run: echo
`,
    "broken.yml",
  );
  const summary = findings.map((f) => `${f.line}:${f.kind}`);
  assert.deepEqual(summary.sort(), [
    "6:expression",
    "7:job-needs",
    "9:runner-label",
  ]);
  assert.ok(findings.every((f) => f.file === "broken.yml"));
});
