import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import assert from "node:assert/strict";
import { servedFileDescriptors, splitFileDescriptorSet } from "./reflection.ts";

Deno.test("reflection serves protoc's files for our API, its imports and health", () => {
  const files = servedFileDescriptors().map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes)
  );
  const byName = new Map(files.map((f) => [f.name, f]));
  assert.deepEqual(byName.get("telejob/v1/telejob.proto")?.dependency, [
    "google/protobuf/duration.proto",
    "google/protobuf/timestamp.proto",
  ]);
  // Every import is served too.
  for (const file of files) {
    for (const dependency of file.dependency) {
      assert.ok(byName.has(dependency), `${file.name} imports ${dependency}`);
    }
  }
  assert.ok(byName.get("health/v1/health.proto")?.service[0]?.name, "Health");
});

Deno.test("splitFileDescriptorSet reads the files and refuses other bytes", () => {
  // Two files: field 1, lengths 2 and 0.
  const set = new Uint8Array([0x0a, 2, 0x0a, 0x00, 0x0a, 0]);
  assert.deepEqual(
    splitFileDescriptorSet(set).map((f) => [...f]),
    [[0x0a, 0x00], []],
  );
  assert.throws(
    () => splitFileDescriptorSet(new Uint8Array([0x12, 0])),
    /expected field 1/,
  );
  assert.throws(
    () => splitFileDescriptorSet(new Uint8Array([0x0a, 5, 1])),
    /truncated/,
  );
  assert.throws(
    () => splitFileDescriptorSet(new Uint8Array([0x0a, 0x80])),
    /bad varint/,
  );
});
