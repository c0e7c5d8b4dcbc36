/**
 * Test helper shared by the tests of the request rules and their callers.
 * @module
 */
import assert from "node:assert/strict";
import { JobError } from "./errors.ts";

/** Asserts that `fn` throws an `invalid_argument` JobError on `field`. */
export function assertInvalid(
  fn: () => unknown,
  field: string,
  pattern: RegExp,
): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof JobError, `not a JobError: ${error}`);
    assert.equal(error.code, "invalid_argument");
    assert.equal(error.field, field);
    assert.match(error.message, pattern);
    return true;
  });
}
