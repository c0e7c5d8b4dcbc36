import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import {
  JobState,
  LogsResponse,
  StartRequest,
} from "../proto/gen/telejob/v1/telejob.ts";
import { JobError } from "./jobs/errors.ts";
import type { JobInfo } from "./jobs/mod.ts";
import {
  encodeLogsResponse,
  mapError,
  telejobServiceDefinition,
  toProtoJob,
} from "./service.ts";

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

Deno.test("toProtoJob carries every field of the engine's record", () => {
  const job: JobInfo = {
    id: "3",
    owner: "alice",
    command: "sleep",
    args: ["1"],
    cwd: "/",
    state: "finished",
    startedAt: new Date(1000),
    endedAt: new Date(2000),
    signal: "SIGKILL",
    oomKilled: true,
    stopped: true,
    stoppedBy: "admin",
    lostInRestart: false,
    outputLimitReached: true,
    limits: { cpu: 0.5, io: [{ major: 8, minor: 0, wbps: 100 }] },
    usage: { cpuUsec: 1, memoryPeakBytes: 2, ioReadBytes: 3, ioWriteBytes: 4 },
    outputBytes: 5,
    account: "telejob-2000000000",
    uid: 2000000000,
    startError: "cannot enter the working directory",
  };
  const proto = toProtoJob(job);
  assert.equal(proto.account, "telejob-2000000000");
  assert.equal(proto.uid, 2000000000);
  assert.equal(proto.startError, "cannot enter the working directory");
  assert.equal(proto.state, JobState.JOB_STATE_FINISHED);
  assert.equal(proto.exitCode, undefined);
  assert.equal(proto.signal, "SIGKILL");
  assert.equal(proto.stoppedBy, "admin");
  assert.deepEqual(proto.limits, {
    cpu: 0.5,
    memoryBytes: 0,
    pids: 0,
    io: [{ major: 8, minor: 0, rbps: 0, wbps: 100, riops: 0, wiops: 0 }],
  });
  assert.deepEqual(proto.usage, job.usage);
  assert.deepEqual(proto.endedAt, new Date(2000));
  assert.equal(
    toProtoJob({ ...job, state: "running", endedAt: undefined, exitCode: 0 })
      .exitCode,
    0,
  );
});

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
