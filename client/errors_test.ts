import assert from "node:assert/strict";
import { UsageError } from "../common/args.ts";
import { ValueError } from "../common/units.ts";
import {
  asCliError,
  brokenPipe,
  CliError,
  isBrokenPipe,
  usageError,
} from "./errors.ts";

Deno.test("CliError: exit 1 unless it is a usage error", () => {
  assert.equal(new CliError("x").exitCode, 1);
  assert.equal(usageError("x").exitCode, 2);
});

Deno.test("brokenPipe: a quiet end with 0, told apart from failures", () => {
  assert.equal(brokenPipe().exitCode, 0);
  assert.equal(brokenPipe().message, "");
  assert.ok(isBrokenPipe(brokenPipe()));
  assert.ok(!isBrokenPipe(new CliError("x")));
  assert.ok(!isBrokenPipe(new Error("x")));
});

Deno.test("asCliError: common/'s parse errors are usage errors", () => {
  const own = new CliError("own");
  assert.equal(asCliError(own, "telejob stop"), own);
  const usage = asCliError(new UsageError("Missing x"), "telejob stop");
  assert.equal(usage?.exitCode, 2);
  assert.equal(usage?.message, "Missing x");
  const value = asCliError(new ValueError("Invalid --grace"), "telejob stop");
  assert.equal(value?.exitCode, 2);
  assert.equal(value?.message, 'Invalid --grace: run "telejob stop --help"');
  assert.equal(asCliError(new Error("bug"), "telejob stop"), undefined);
});
