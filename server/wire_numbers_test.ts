import assert from "node:assert/strict";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { type NumberFields, unsafeNumberField } from "./wire_numbers.ts";

const LOGS = { 3: "offset", 4: "tail" };
const START: NumberFields = {
  5: ["limits", { 2: "memory_bytes", 4: ["io", { 3: "rbps" }] }],
};

Deno.test("names the field whose 64-bit number is too large", () => {
  const huge = new BinaryWriter().uint32(10).string("1")
    .uint32(24).uint64(2n ** 64n - 1n).finish();
  assert.equal(unsafeNumberField(huge, LOGS), "offset");
  const fine = new BinaryWriter().uint32(24).uint64(2n ** 53n - 1n)
    .uint32(32).uint64(2n ** 53n).finish();
  assert.equal(unsafeNumberField(fine, LOGS), "tail");
  const io = new BinaryWriter().uint32(24).uint64(2n ** 60n).finish();
  const limits = new BinaryWriter().uint32(34).bytes(io).finish();
  const start = new BinaryWriter().uint32(10).string("ls").uint32(42)
    .bytes(limits).finish();
  assert.equal(
    unsafeNumberField(start, START),
    "limits.io.rbps",
  );
  assert.equal(
    unsafeNumberField(new Uint8Array([0x0a, 0x64]), LOGS),
    undefined,
  );
  assert.equal(unsafeNumberField(new Uint8Array(), LOGS), undefined);
});
