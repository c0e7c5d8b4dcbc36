import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { checkImports, importSpecifiers } from "./check_imports.ts";

/** A temporary tree of files, removed when disposed. */
interface Tree extends Disposable {
  /** Its root directory. */
  root: string;
}

/** Writes `files` (relative path → source) into a fresh temporary tree. */
function tree(files: Record<string, string>): Tree {
  const root = Deno.makeTempDirSync({ prefix: "telejob-imports-" });
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return {
    root,
    [Symbol.dispose]: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A tree whose imports all point the right way. */
const GOOD: Record<string, string> = {
  "common/args.ts": 'import { parseArgs } from "node:util";\n',
  "cgroup/mod.ts": 'export { parseByteSize } from "../common/size.ts";\n',
  "server/jobs/engine.ts":
    'import {\n  type CgroupDriver,\n  emptyUsage,\n} from "../../cgroup/mod.ts";\n',
  "server/jobs/_test_util.ts":
    'import { testDriver } from "../../cgroup/testing.ts";\n',
  "server/config.ts": 'import { UsageError } from "../common/args.ts";\n',
  "client/main.ts": 'import { VERSION } from "../version/mod.ts";\n',
  "version/mod.ts":
    'import config from "../deno.json" with { type: "json" };\n',
  "tests/e2e_test.ts":
    'import "../server/config.ts";\nimport "../client/main.ts";\n',
};

Deno.test("importSpecifiers reads every form of import and re-export", () => {
  const source = [
    'import assert from "node:assert/strict";',
    'import type { A } from "./a.ts";',
    "import {",
    "  b,",
    "  type C,",
    '} from "../b.ts";',
    'import "./side_effect.ts";',
    'export { d } from "./d.ts";',
    'export * from "./e.ts";',
    'const f = await import("./f.ts");',
    'const text = "import nothing from here";',
  ].join("\n");
  assert.deepEqual(importSpecifiers(source), [
    "node:assert/strict",
    "./a.ts",
    "../b.ts",
    "./side_effect.ts",
    "./d.ts",
    "./e.ts",
    "./f.ts",
  ]);
});

Deno.test("checkImports passes a tree whose imports point one way", () => {
  using t = tree(GOOD);
  assert.deepEqual(checkImports(t.root), []);
});

Deno.test("checkImports fails on each import against the direction", () => {
  const planted: [string, string, RegExp][] = [
    [
      "cgroup/limits.ts",
      'import { JobError } from "../server/jobs/errors.ts";',
      /cgroup\/ may import only common\//,
    ],
    [
      "server/config.ts",
      'import { UsageError } from "../client/args.ts";',
      /server\/ may import only/,
    ],
    [
      "client/units.ts",
      'import { parseByteSize } from "../cgroup/size.ts";',
      /client\/ may import only/,
    ],
    [
      "client/main.ts",
      'import type { JobInfo } from "../server/jobs/types.ts";',
      /client\/ may import only/,
    ],
    [
      "common/units.ts",
      'import { hostCpus } from "../cgroup/limits.ts";',
      /common\/ may import only nothing of ours/,
    ],
    [
      "server/jobs/engine.ts",
      'import { shimCommand } from "../../cgroup/shim.ts";',
      /only through cgroup\/mod.ts/,
    ],
    [
      "server/jobs/store.ts",
      'import { testDriver } from "../../cgroup/testing.ts";',
      /only through cgroup\/mod.ts/,
    ],
  ];
  for (const [file, line, reason] of planted) {
    using t = tree({ ...GOOD, [file]: `${line}\n` });
    const found = checkImports(t.root);
    assert.equal(found.length, 1, `${file}: ${JSON.stringify(found)}`);
    assert.equal(found[0].file, file);
    assert.match(found[0].reason, reason, file);
  }
});

Deno.test("this repository's imports point one way", () => {
  const root = join(dirname(new URL(import.meta.url).pathname), "..");
  assert.deepEqual(checkImports(root), []);
});
