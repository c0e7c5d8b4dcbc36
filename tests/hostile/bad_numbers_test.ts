/**
 * Finding 7 of issue 10: a Logs offset of 2^53 − 1 was INTERNAL (seek
 * EINVAL). Every number of every request that is out of range is now
 * INVALID_ARGUMENT naming the field and what is allowed, including 64-bit
 * values too large for the decoder.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import {
  call,
  clientFor,
  failure,
  rawClient,
  readLogs,
  type ServerProcess,
  startServer,
} from "../server_harness.ts";

/** Sends raw request bytes to `method`; resolves with the status. */
async function raw(
  server: ServerProcess,
  method: "Start" | "Stop" | "Logs" | "List",
  message: Uint8Array,
): Promise<{ code: string; details: string }> {
  const stream = method === "Logs";
  const client = rawClient(server.port, {
    call: { path: `/telejob.v1.Telejob/${method}`, responseStream: stream },
  });
  try {
    const error = await new Promise<grpc.ServiceError | null>((resolve) => {
      if (stream) {
        // deno-lint-ignore no-explicit-any
        const call = (client as any).call(Buffer.from(message));
        call.on("data", () => {});
        call.on("error", resolve);
        call.on("end", () => resolve(null));
      } else {
        // deno-lint-ignore no-explicit-any
        (client as any).call(
          Buffer.from(message),
          (e: grpc.ServiceError | null) => resolve(e),
        );
      }
    });
    return error === null
      ? { code: "OK", details: "" }
      : { code: grpc.status[error.code], details: error.details };
  } finally {
    client.close();
  }
}

const MAX_U64 = 2n ** 64n - 1n;

Deno.test("out-of-range numbers are INVALID_ARGUMENT naming the field, never INTERNAL", async () => {
  const server = await startServer({ args: ["--output-limit", "1M"] });
  const c1 = clientFor(server, "client1");
  try {
    const { id } = await call<{ id: string }>(c1, "start", {
      command: "echo",
      args: ["hello"],
    });
    const logs = (offset?: number, tail?: number) =>
      readLogs(c1, { id, offset, tail });
    const cases: [string, Promise<unknown>, RegExp][] = [
      ["offset 2^53-1", logs(2 ** 53 - 1), /^offset: .*0 to 1048576/],
      ["offset past the cap", logs(1048577), /^offset: .*0 to 1048576/],
      [
        "offset 2^64-1",
        raw(
          server,
          "Logs",
          new BinaryWriter().uint32(10).string(id).uint32(24).uint64(MAX_U64)
            .finish(),
        ),
        /^offset: .*at most 9007199254740991/,
      ],
      [
        "tail 2^64-1",
        raw(
          server,
          "Logs",
          new BinaryWriter().uint32(10).string(id).uint32(32).uint64(MAX_U64)
            .finish(),
        ),
        /^tail: /,
      ],
      [
        "grace.seconds 2^63-1",
        raw(
          server,
          "Stop",
          new BinaryWriter().uint32(10).string(id).uint32(18).bytes(
            new BinaryWriter().uint32(8).int64(2n ** 63n - 1n).finish(),
          ).finish(),
        ),
        /^grace\.seconds: /,
      ],
      [
        "grace -1 s",
        failure(c1, "stop", { id, grace: { seconds: -1, nanos: 0 } }),
        /^grace: /,
      ],
      [
        "limits.memory_bytes 2^64-1",
        raw(
          server,
          "Start",
          new BinaryWriter().uint32(10).string("true").uint32(42).bytes(
            new BinaryWriter().uint32(16).uint64(MAX_U64).finish(),
          ).finish(),
        ),
        /^limits\.memory_bytes: /,
      ],
      ["page_size -1", failure(c1, "list", { pageSize: -1 }), /^page_size: /],
      [
        "page_token made up",
        failure(c1, "list", { pageToken: "bm9wZQ" }),
        /^page_token: /,
      ],
      ["view 7", failure(c1, "list", { view: 7 }), /^view: /],
    ];
    for (const [what, result, pattern] of cases) {
      const { code, details } = await result as {
        code: string;
        details: string;
      };
      assert.equal(code, "INVALID_ARGUMENT", `${what}: ${details}`);
      assert.match(details, pattern, what);
    }
    assert.ok(server.alive());
    assert.ok(!server.lines.some((l) => l.includes('"INTERNAL"')));
  } finally {
    c1.close();
    await server.stop();
  }
});
