import assert from "node:assert/strict";
import { JobError } from "./errors.ts";
import {
  DEFAULT_GRACE_MS,
  parseByteCount,
  parseGrace,
} from "./engine_options.ts";

Deno.test("parseGrace defaults, rounds down and keeps the shared maximum", () => {
  assert.equal(parseGrace(undefined), DEFAULT_GRACE_MS);
  assert.equal(parseGrace(1.9), 1);
  assert.equal(parseGrace(24 * 3600 * 1000), 24 * 3600 * 1000);
  assert.throws(() => parseGrace(24 * 3600 * 1000 + 1), JobError);
  assert.throws(() => parseGrace(-1), JobError);
});

Deno.test("parseByteCount takes whole numbers from 0 to max", () => {
  assert.equal(parseByteCount(undefined, "tail", 10), undefined);
  assert.equal(parseByteCount(10, "offset", 10), 10);
  assert.throws(
    () => parseByteCount(11, "offset", 10),
    /Offset 11 is out of range: .* \(the output cap/,
  );
  assert.throws(() => parseByteCount(1.5, "tail", 10), /Tail 1.5/);
});
