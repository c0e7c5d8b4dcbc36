import assert from "node:assert/strict";
import {
  parseCount,
  parseCpu,
  parseDuration,
  parseSize,
  readDecimal,
  ValueError,
} from "./units.ts";

Deno.test("parseSize: units are powers of 1024, a plain number is KiB", () => {
  assert.equal(parseSize("--memory", "2000"), 2000 * 1024);
  assert.equal(parseSize("--memory", "512M"), 512 * 1024 ** 2);
  assert.equal(parseSize("--memory", "1.5g"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("--memory", "64KiB"), 64 * 1024);
  assert.equal(parseSize("--memory", "100B"), 100);
  for (const bad of ["", "0", "-1M", "12Q", "M", "1e9"]) {
    assert.throws(
      () => parseSize("--memory", bad),
      (err: Error) =>
        err instanceof ValueError &&
        err.message.startsWith(`Invalid --memory ${JSON.stringify(bad)}: `),
      bad,
    );
  }
});

Deno.test("parseDuration: Go style, plain seconds, zero", () => {
  assert.equal(parseDuration("--grace", "10s"), 10_000);
  assert.equal(parseDuration("--grace", "1m30s"), 90_000);
  assert.equal(parseDuration("--grace", "500ms"), 500);
  assert.equal(parseDuration("--grace", "1.5h"), 5_400_000);
  assert.equal(parseDuration("--grace", "0"), 0);
  assert.equal(parseDuration("--grace", "2"), 2000);
  for (const bad of ["", "s", "10 s", "-1s", "10x", "1s2"]) {
    assert.throws(
      () => parseDuration("--grace", bad),
      /^ValueError: Invalid --grace .*: use a duration like 10s/,
      bad,
    );
  }
});

Deno.test("parseCount and parseCpu", () => {
  assert.equal(parseCount("--tail", "0"), 0);
  assert.equal(parseCount("--pids", "100", { min: 1 }), 100);
  assert.throws(
    () => parseCount("--pids", "0", { min: 1 }),
    /Invalid --pids "0": use a whole number of at least 1/,
  );
  assert.throws(() => parseCount("--tail", "1.5"), ValueError);
  assert.throws(() => parseCount("--tail", "-3"), ValueError);
  assert.equal(parseCpu("--cpu", "0.5"), 0.5);
  assert.equal(parseCpu("--cpu", ".25"), 0.25);
  for (const bad of ["0", "-1", "abc", ""]) {
    assert.throws(() => parseCpu("--cpu", bad), /greater than 0/, bad);
  }
});

Deno.test("readDecimal: the one CPU-count syntax of the CLI and the server", () => {
  for (const [text, n] of [["2", 2], ["0.5", 0.5], [".5", 0.5], ["1.", 1]]) {
    assert.equal(readDecimal(` ${text} `), n, String(text));
  }
  for (const bad of ["", "-1", "+1", "1e3", "0x10", "1,5", "Infinity"]) {
    assert.ok(Number.isNaN(readDecimal(bad)), bad);
  }
});
