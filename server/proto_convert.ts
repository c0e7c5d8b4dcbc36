/**
 * Converts the engine's job records to the API's messages: absent limits
 * and signals become proto3 zero values.
 * @module
 */
import {
  type Job,
  JobState,
  type Limits as ProtoLimits,
} from "../proto/gen/telejob/v1/telejob.ts";
import type { Limits } from "../cgroup/mod.ts";
import type { JobInfo } from "./jobs/mod.ts";

const STATE: Record<JobInfo["state"], JobState> = {
  running: JobState.JOB_STATE_RUNNING,
  finished: JobState.JOB_STATE_FINISHED,
};

function toProtoLimits(limits: Limits): ProtoLimits {
  return {
    cpu: limits.cpu ?? 0,
    memoryBytes: limits.memoryBytes ?? 0,
    pids: limits.pids ?? 0,
    io: (limits.io ?? []).map((io) => ({
      major: io.major,
      minor: io.minor,
      rbps: io.rbps ?? 0,
      wbps: io.wbps ?? 0,
      riops: io.riops ?? 0,
      wiops: io.wiops ?? 0,
    })),
  };
}

/** Converts the engine's job record to the API's. */
export function toProtoJob(job: JobInfo): Job {
  return {
    id: job.id,
    owner: job.owner,
    command: job.command,
    args: job.args,
    cwd: job.cwd,
    state: STATE[job.state] ?? JobState.JOB_STATE_UNSPECIFIED,
    startedAt: job.startedAt,
    endedAt: job.endedAt,
    exitCode: job.exitCode,
    signal: job.signal ?? "",
    oomKilled: job.oomKilled,
    stopped: job.stopped,
    stoppedBy: job.stoppedBy ?? "",
    lostInRestart: job.lostInRestart,
    outputLimitReached: job.outputLimitReached,
    limits: toProtoLimits(job.limits),
    usage: {
      cpuUsec: job.usage.cpuUsec,
      memoryPeakBytes: job.usage.memoryPeakBytes,
      ioReadBytes: job.usage.ioReadBytes,
      ioWriteBytes: job.usage.ioWriteBytes,
    },
    outputBytes: job.outputBytes,
    account: job.account,
    uid: job.uid,
    startError: job.startError ?? "",
  };
}
