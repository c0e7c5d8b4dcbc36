import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { LogsResponse, StartRequest } from "../proto/gen/telejob/v1/telejob.ts";
import { encodeLogsResponse, telejobServiceDefinition } from "./codec.ts";

Deno.test("the service's decoders never throw on malformed bytes", () => {
  const good = Buffer.from(
    StartRequest.encode(StartRequest.fromPartial({ command: "x" })).finish(),
  );
  assert.equal(
    (telejobServiceDefinition.start.requestDeserialize(good) as StartRequest)
      .command,
    "x",
  );
  const bad = telejobServiceDefinition.start.requestDeserialize(
    Buffer.from([0x0a, 0x64, 0x61]),
  );
  assert.equal(typeof bad, "object");
  assert.equal((bad as StartRequest).command, undefined);
});

Deno.test("encodeLogsResponse matches the generated encoder", () => {
  for (const size of [0, 1, 127, 128, 16_383, 16_384, 65_536, 300_000]) {
    const data = new Uint8Array(size).map((_, i) => i % 251);
    const ours = encodeLogsResponse({ data });
    const generated = LogsResponse.encode({ data }).finish();
    assert.deepEqual(new Uint8Array(ours), generated, `size ${size}`);
    assert.deepEqual(new Uint8Array(LogsResponse.decode(ours).data), data);
  }
});
