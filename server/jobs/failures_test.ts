import assert from "node:assert/strict";
import { SHIM_FAILURE_PREFIX } from "../../cgroup/mod.ts";
import { JobError } from "./errors.ts";
import { exhausted, isDiskFull, shimFailure } from "./failures.ts";

Deno.test("exhausted names a kernel resource shortage by its errno code", () => {
  const error = exhausted(Object.assign(new Error("x"), { code: "EMFILE" }));
  assert.ok(error instanceof JobError);
  assert.equal(error.code, "resource_exhausted");
  assert.match(error.message, /too many open files/);
  assert.equal(exhausted(new Error("EMFILE in the text only")), undefined);
});

Deno.test("isDiskFull knows ENOSPC, EDQUOT and SQLITE_FULL", () => {
  assert.ok(isDiskFull(Object.assign(new Error(), { code: "ENOSPC" })));
  assert.ok(isDiskFull(Object.assign(new Error(), { code: "EDQUOT" })));
  assert.ok(
    isDiskFull(
      Object.assign(new Error(), { code: "ERR_SQLITE_ERROR", errcode: 13 }),
    ),
  );
  assert.ok(
    !isDiskFull(
      Object.assign(new Error(), { code: "ERR_SQLITE_ERROR", errcode: 5 }),
    ),
  );
  assert.ok(!isDiskFull(new Error("no space left on device")));
});

Deno.test("shimFailure reads only the shim's own single line", () => {
  const dir = Deno.makeTempDirSync();
  try {
    const path = `${dir}/1.out`;
    Deno.writeTextFileSync(path, `${SHIM_FAILURE_PREFIX}cannot enter /x\n`);
    assert.equal(shimFailure(path), "cannot enter /x");
    Deno.writeTextFileSync(path, `${SHIM_FAILURE_PREFIX}a\nmore output\n`);
    assert.equal(shimFailure(path), undefined);
    Deno.writeTextFileSync(path, "the command's own output\n");
    assert.equal(shimFailure(path), undefined);
    assert.equal(shimFailure(`${dir}/missing.out`), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
