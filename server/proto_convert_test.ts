import assert from "node:assert/strict";
import { JobState } from "../proto/gen/telejob/v1/telejob.ts";
import type { JobInfo } from "./jobs/mod.ts";
import { toProtoJob } from "./proto_convert.ts";

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
