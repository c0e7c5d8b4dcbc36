import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

Deno.test("createLogger writes one JSON object per RPC with the fields operators need", () => {
  const lines: string[] = [];
  const logger = createLogger({ write: (l) => lines.push(l), now: () => 0 });
  logger.rpc({
    user: "alice",
    method: "Start",
    jobId: "7",
    outcome: "OK",
    durationMs: 1.23456,
  });
  logger.rpc({
    user: "bob",
    method: "List",
    outcome: "INTERNAL",
    durationMs: 2,
    detail: "boom\nstack",
  });
  logger.event("listening", { port: 1 });
  assert.equal(lines.length, 3);
  assert.ok(lines.every((l) => !l.includes("\n")));
  assert.deepEqual(JSON.parse(lines[0]), {
    time: "1970-01-01T00:00:00.000Z",
    user: "alice",
    method: "Start",
    jobId: "7",
    outcome: "OK",
    durationMs: 1.235,
  });
  assert.equal(JSON.parse(lines[1]).jobId, null);
  assert.equal(JSON.parse(lines[1]).detail, "boom\nstack");
  assert.deepEqual(JSON.parse(lines[2]), {
    time: "1970-01-01T00:00:00.000Z",
    event: "listening",
    port: 1,
  });
});
