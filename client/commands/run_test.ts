import assert from "node:assert/strict";
import { Job, JobState } from "../../proto/gen/telejob/v1/telejob.ts";
import { exitCodeOf } from "./run.ts";

Deno.test("exitCodeOf: the job's code, or 128+signal like a shell", () => {
  const job = (fields: Partial<Job>) =>
    Job.fromPartial({ state: JobState.JOB_STATE_FINISHED, ...fields });
  assert.equal(exitCodeOf(job({ exitCode: 0 })), 0);
  assert.equal(exitCodeOf(job({ exitCode: 42 })), 42);
  assert.equal(exitCodeOf(job({ signal: "SIGTERM" })), 143);
  assert.equal(exitCodeOf(job({ signal: "SIGKILL" })), 137);
  assert.equal(exitCodeOf(job({ oomKilled: true })), 137);
  assert.equal(exitCodeOf(job({ lostInRestart: true })), 1);
});
