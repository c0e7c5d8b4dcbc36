import assert from "node:assert/strict";
import { assertInvalid } from "../common/_test_util.ts";
import { MAX_GRACE_MS } from "../common/validate.ts";
import {
  checkGrace,
  checkId,
  checkLogs,
  checkStart,
} from "./request_checks.ts";
import type { StartRequest } from "../proto/gen/telejob/v1/telejob.ts";

const base: StartRequest = {
  command: "echo",
  args: [],
  env: [],
  cwd: "",
  limits: undefined,
  user: "",
};

Deno.test("checkId refuses what the engine refuses, and an absent id", () => {
  assert.equal(checkId("42"), "42");
  assertInvalid(() => checkId(""), "id", /^missing job id/);
  // The engine's rule: no "0", no leading zero, at most 16 digits.
  for (const id of ["0", "007", "9".repeat(17), "../1"]) {
    assertInvalid(() => checkId(id), "id", /positive decimal numbers/);
  }
});

Deno.test("checkStart applies the shared rules and maps proto3 zeros", () => {
  const checked = checkStart({ ...base, env: ["A=1"] });
  assert.equal(checked.cwd, undefined);
  assert.equal(checked.user, undefined);
  assert.deepEqual(checked.env, ["A=1"]);
  assertInvalid(
    () => checkStart({ ...base, command: "" }),
    "command",
    /missing/,
  );
  // The engine's env rule, not a looser one of the service's own.
  assertInvalid(
    () => checkStart({ ...base, env: ["A-B=x"] }),
    "env[0]",
    /KEY=VALUE/,
  );
  assertInvalid(() => checkStart({ ...base, cwd: "tmp" }), "cwd", /absolute/);
  assertInvalid(() => checkStart({ ...base, args: ["\0"] }), "args[0]", /NUL/);
  assertInvalid(
    () => checkStart({ ...base, user: "-x" }),
    "user",
    /login name/,
  );
});

Deno.test("checkGrace takes a normalised Duration up to the shared maximum", () => {
  assert.equal(checkGrace({ id: "1" } as never), undefined);
  assert.equal(
    checkGrace({ id: "1", grace: { seconds: 1, nanos: 500_000 } } as never),
    1001,
  );
  assert.equal(
    checkGrace(
      { id: "1", grace: { seconds: MAX_GRACE_MS / 1000, nanos: 0 } } as never,
    ),
    MAX_GRACE_MS,
  );
  assertInvalid(
    () =>
      checkGrace(
        {
          id: "1",
          grace: { seconds: MAX_GRACE_MS / 1000 + 1, nanos: 0 },
        } as never,
      ),
    "grace",
    /maximum/,
  );
  assertInvalid(
    () => checkGrace({ id: "1", grace: { seconds: 1, nanos: -5 } } as never),
    "grace",
    /not a valid duration/,
  );
});

Deno.test("checkLogs refuses numbers a double cannot hold", () => {
  assert.deepEqual(
    checkLogs({ id: "1", follow: false, offset: 0 } as never),
    { follow: false, offset: undefined, tail: undefined },
  );
  assertInvalid(
    () => checkLogs({ id: "1", follow: false, offset: -1 } as never),
    "offset",
    /out of range/,
  );
});
