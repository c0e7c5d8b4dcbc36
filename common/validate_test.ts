import assert from "node:assert/strict";
import { assertInvalid } from "./_test_util.ts";
import {
  checkCwd,
  checkExecSize,
  checkGraceMs,
  checkJobId,
  checkLoginName,
  checkNoNul,
  MAX_ARG_BYTES,
  MAX_ARGS,
  MAX_ENV,
  MAX_EXEC_BYTES,
  MAX_GRACE_MS,
  parseEnvEntry,
  utf8Length,
} from "./validate.ts";

Deno.test("checkJobId takes positive decimal ids of at most 16 digits", () => {
  for (const id of ["1", "42", "9".repeat(16)]) {
    assert.equal(checkJobId(id), id);
  }
  for (
    const id of ["", "0", "042", "-1", "1.5", "../1", "9".repeat(17), " 1"]
  ) {
    assertInvalid(() => checkJobId(id), "id", /is not valid: ids are positive/);
  }
  assertInvalid(() => checkJobId(7, "after"), "after", /Job id 7 is not valid/);
  // A huge id is shown cut, not echoed whole.
  assertInvalid(() => checkJobId("9".repeat(5000)), "id", /9{40}"…/);
});

Deno.test("checkGraceMs takes 0 to 24 h", () => {
  assert.equal(checkGraceMs(0), 0);
  assert.equal(checkGraceMs(1.5), 1.5);
  assert.equal(checkGraceMs(MAX_GRACE_MS), 24 * 60 * 60 * 1000);
  assertInvalid(() => checkGraceMs(-5), "graceMs", /negative/);
  assertInvalid(
    () => checkGraceMs(MAX_GRACE_MS + 1, "grace"),
    "grace",
    /maximum/,
  );
  assertInvalid(() => checkGraceMs(Infinity), "graceMs", /maximum/);
  assertInvalid(() => checkGraceMs(NaN), "graceMs", /not a number/);
  assertInvalid(() => checkGraceMs("5"), "graceMs", /not a number/);
});

Deno.test("parseEnvEntry splits at the first = and checks the key", () => {
  const subject = { field: "env", what: "Env entry 1" };
  assert.deepEqual(parseEnvEntry("A=b=c", subject), ["A", "b=c"]);
  assert.deepEqual(parseEnvEntry("_x1=", subject), ["_x1", ""]);
  for (const entry of ["NOEQUALS", "=value", "1A=x", "A-B=x", "A B=x"]) {
    assertInvalid(
      () => parseEnvEntry(entry, subject),
      "env",
      /^Env entry 1 .*KEY=VALUE/,
    );
  }
  assertInvalid(() => parseEnvEntry("A=\0", subject), "env", /NUL/);
});

Deno.test("checkNoNul and checkCwd refuse NUL bytes and relative paths", () => {
  checkNoNul("fine", { field: "command", what: "Command" });
  assertInvalid(
    () => checkNoNul("ec\0ho", { field: "command", what: "Command" }),
    "command",
    /^Command contains a NUL byte/,
  );
  checkCwd("/tmp");
  assertInvalid(() => checkCwd("tmp"), "cwd", /not absolute/);
  assertInvalid(() => checkCwd("/tmp\0"), "cwd", /NUL/);
});

Deno.test("checkExecSize bounds counts, each string and the total", () => {
  const ok = { command: "echo", args: ["a"], env: ["A=1"] };
  checkExecSize(ok);
  assertInvalid(
    () => checkExecSize({ ...ok, args: Array(MAX_ARGS + 1).fill("x") }),
    "args",
    /^10001 arguments given; at most 10000/,
  );
  assertInvalid(
    () => checkExecSize({ ...ok, env: Array(MAX_ENV + 1).fill("A=1") }),
    "env",
    /at most 1000/,
  );
  assertInvalid(
    () => checkExecSize({ ...ok, args: ["a", "x".repeat(MAX_ARG_BYTES + 1)] }),
    "args[1]",
    /^Argument 2 is 131073 bytes long; .*at most 131072/,
  );
  assertInvalid(
    () => checkExecSize({ ...ok, args: ["b\0"] }),
    "args[0]",
    /NUL/,
  );
  assertInvalid(
    () => checkExecSize({ ...ok, env: ["A=1", "JUSTKEY"] }),
    "env[1]",
    /KEY=VALUE/,
  );
  assertInvalid(
    () =>
      checkExecSize({ ...ok, args: Array(9).fill("y".repeat(MAX_ARG_BYTES)) }),
    "args",
    new RegExp(`at most ${MAX_EXEC_BYTES} are allowed`),
  );
});

Deno.test("utf8Length counts as TextEncoder does", () => {
  for (const s of ["", "abc", "é", "€", "😀", "a😀b€"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).length, s);
  }
});

Deno.test("checkLoginName takes login names of at most 64 characters", () => {
  assert.equal(checkLoginName("alice"), "alice");
  assert.equal(checkLoginName("host$"), "host$");
  assertInvalid(() => checkLoginName("-x"), "user", /not a login name/);
  assertInvalid(() => checkLoginName("a".repeat(65)), "user", /at most 64/);
});
