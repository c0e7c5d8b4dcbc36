import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { JobError } from "./jobs/errors.ts";
import { mapError } from "./error_map.ts";

Deno.test("mapError maps each JobError code to its gRPC status and keeps the message", () => {
  const cases: [JobError, grpc.status][] = [
    [
      new JobError("invalid_argument", "bad", "command"),
      grpc.status.INVALID_ARGUMENT,
    ],
    [new JobError("not_found", 'Job "1" not found'), grpc.status.NOT_FOUND],
    [
      new JobError("resource_exhausted", "quota"),
      grpc.status.RESOURCE_EXHAUSTED,
    ],
    [new JobError("unavailable", "shutting down"), grpc.status.UNAVAILABLE],
    [
      new JobError("failed_precondition", "no cpu controller"),
      grpc.status.FAILED_PRECONDITION,
    ],
  ];
  for (const [error, code] of cases) {
    const mapped = mapError(error);
    assert.equal(mapped.code, code);
    assert.equal(mapped.logDetail, undefined);
  }
  assert.equal(mapError(cases[0][0]).details, "command: bad");
  assert.equal(
    mapError(
      new JobError("invalid_argument", "limits.cpu: too big", "limits.cpu"),
    )
      .details,
    "limits.cpu: too big",
  );
});

Deno.test("mapError hides internals and gives the log a matching reference", () => {
  const mapped = mapError(new Error("EACCES /var/lib/secret/path"));
  assert.equal(mapped.code, grpc.status.INTERNAL);
  assert.ok(!mapped.details.includes("secret"));
  const reference = /reference ([0-9a-f]{8})/.exec(mapped.details)?.[1];
  assert.ok(reference);
  assert.ok(mapped.logDetail?.startsWith(`[${reference}]`));
  assert.ok(mapped.logDetail?.includes("/var/lib/secret/path"));
  assert.equal(mapError("a string").code, grpc.status.INTERNAL);
});
