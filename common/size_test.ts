import assert from "node:assert/strict";
import { parseByteSize } from "./size.ts";

Deno.test("parseByteSize reads units as powers of 1024 and plain numbers in plainUnit", () => {
  const kib = { plainUnit: 1024 };
  assert.equal(parseByteSize("2000", kib), 2000 * 1024);
  assert.equal(parseByteSize("2000", { plainUnit: 1 }), 2000);
  assert.equal(parseByteSize("512M", kib), 512 * 1024 ** 2);
  assert.equal(parseByteSize(" 1.5g ", kib), 1.5 * 1024 ** 3);
  assert.equal(parseByteSize("64KiB", kib), 64 * 1024);
  assert.equal(parseByteSize("100B", kib), 100);
  assert.equal(parseByteSize("1T", kib), 1024 ** 4);
});

Deno.test("parseByteSize gives NaN for what is not a size", () => {
  for (const bad of ["", "abc", "-5M", "5X", "1e3", "5 M B", "0x10"]) {
    assert.ok(Number.isNaN(parseByteSize(bad, { plainUnit: 1 })), bad);
  }
});
