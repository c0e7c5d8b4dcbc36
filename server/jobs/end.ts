/**
 * A job's end: once its main process exited, whatever it left in its cgroup
 * is killed (like systemd's `KillMode=control-group`), the OOM-kill counter
 * and usage are read, the cgroup is removed, the output size settled
 * against the cap, and the final record kept.
 * @module
 */
import { SHIM_FAILURE_EXIT_CODE } from "../../cgroup/mod.ts";
import { shimFailure } from "./failures.ts";
import type { OutputDir } from "./output.ts";
import { finalSize } from "./output_cap.ts";
import type { PendingWrites } from "./pending.ts";
import { copyInfo, type RunningJob, settle } from "./running.ts";
import type { JobInfo } from "./types.ts";

/** The engine's parts a job's end uses. */
export interface EndContext {
  /** The output directory. */
  output: OutputDir;
  /** The per-job output cap in bytes. */
  outputLimit: number;
  /** Writes the store refused, retried until taken. */
  pending: PendingWrites;
  /** The engine's running jobs, which the job leaves. */
  running: Map<string, RunningJob>;
  /** Gives back the owner's quota slot. */
  release: (user: string) => void;
}

/** How a job's main process ended. */
export interface Ending {
  /** The job. */
  job: RunningJob;
  /** Its main process's exit status; undefined when waiting failed. */
  status: Deno.CommandStatus | undefined;
  /** Why waiting for the process failed, if it did. */
  error?: unknown;
}

/** Cleans up after a job whose main process exited and records its end. */
export async function recordEnd(
  ctx: EndContext,
  ending: Ending,
): Promise<JobInfo> {
  const { job, status, error } = ending;
  const { info, cgroup } = job;
  const id = info.id;
  // The job ended when its main process did, not when the clean-up after
  // it (killing leftovers, reading counters, removing the cgroup) is done.
  const endedAt = new Date();
  job.phase = "ending";
  clearTimeout(job.capTimer);
  job.capTimer = undefined;
  if (error !== undefined) {
    console.error(`Job ${id}: waiting for its process failed:`, error);
  }
  await job.capCheck;
  // Like systemd's KillMode=control-group: the job is its main process;
  // whatever it left behind goes with it.
  // A kill begun by stop or the cap may predate the main process's exit;
  // once it is done, one more makes sure nothing is left. The main process
  // has been reaped, so only the cgroup is signalled (signalling the
  // child now would only build and drop an error).
  await job.killing;
  job.killing = cgroup.kill().catch((killError) => {
    console.error(`Job ${id}: kill failed:`, killError);
  });
  await job.killing;
  // The drivers read these counters synchronously (see the `cgroup/fs.ts`
  // module doc), so the end of a short job is a few event-loop turns.
  const [ooms, usage] = await Promise.all([
    settle("oom count", id, () => cgroup.oomKills()),
    settle("usage", id, () => cgroup.usage()),
  ]);
  const [, { bytes, limitReached }] = await Promise.all([
    settle("cgroup removal", id, () => cgroup.remove()),
    finalSize(ctx.output.path(id), ctx.outputLimit),
  ]);

  info.state = "finished";
  info.endedAt = endedAt;
  const startError = status?.code === SHIM_FAILURE_EXIT_CODE && !status.signal
    ? shimFailure(ctx.output.path(id))
    : undefined;
  if (status?.signal) info.signal = status.signal;
  else if (startError !== undefined) info.startError = startError;
  else if (status) info.exitCode = status.code;
  info.oomKilled = (ooms ?? 0) > 0;
  info.outputLimitReached ||= limitReached;
  if (usage) info.usage = usage;
  info.outputBytes = bytes;
  // Kept and retried while the store refuses it (a full disk); lookups
  // answer from the kept record meanwhile.
  ctx.pending.finish(copyInfo(info));
  ctx.running.delete(id);
  ctx.release(info.owner);
  ctx.output.wake(id);
  return copyInfo(info);
}
