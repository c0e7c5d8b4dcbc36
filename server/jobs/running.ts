/**
 * A running job's in-memory state ({@linkcode RunningJob}) and the small
 * helpers the engine's modules (start, cap policing, recovery) share.
 * @module
 */
import type { JobCgroup } from "../../cgroup/mod.ts";
import type { JobInfo } from "./types.ts";

// How many jobs' cgroups list() and recovery read at once: enough to hide
// latency, few enough not to spend the fd budget the jobs need.
const CGROUP_CONCURRENCY = 32;

/** Runs `work` over `items`, at most CGROUP_CONCURRENCY at a time. */
export async function inParallel<T>(
  items: readonly T[],
  work: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: CGROUP_CONCURRENCY }, worker));
}

/**
 * In-memory state of one running job. Kept deliberately small (the target is
 * 15,000 concurrent jobs at ≤ 16 KiB of server memory each): the record, the
 * cgroup handle and a few promises. No timer, pipe, fd or watcher per job;
 * the only per-job kernel resource is the pidfd inside Deno's child handle.
 */
export interface RunningJob {
  info: JobInfo;
  cgroup: JobCgroup;
  /**
   * The main process. Signals go to it as well as to the cgroup: until the
   * shim has written itself into the cgroup (its first microseconds) it is
   * the only process of the job and not yet in the cgroup.
   */
  child: Deno.ChildProcess;
  /** Resolves with the final record once the job has ended and is persisted. */
  ended: Promise<JobInfo>;
  /**
   * Where the job is in its life: `running`; `terminating` once a stop sent
   * SIGTERM (so concurrent stops send it once); `ending` once the main
   * process exited and the end is being recorded (stops and cap checks then
   * leave it alone). It only moves forward. The kill and the cap check
   * below are not phases but shared operations that any phase may await.
   */
  phase: "running" | "terminating" | "ending";
  /** The one kill of the job's cgroup, shared by stop, cap and end. */
  killing?: Promise<void>;
  /** When the output cap was last checked (performance.now()). */
  capCheckedAt: number;
  /**
   * The next cap check, armed by a modify event within CAP_CHECK_INTERVAL_MS
   * of the last one and released when it fires: only writing jobs have one.
   */
  capTimer?: ReturnType<typeof setTimeout>;
  /** Killing the job and truncating its output once it reached the cap. */
  capCheck?: Promise<void>;
}

/** A deep copy of a record, so callers never hold the engine's own. */
export function copyInfo(info: JobInfo): JobInfo {
  const copy: JobInfo = {
    ...info,
    args: [...info.args],
    startedAt: new Date(info.startedAt),
    limits: {
      ...info.limits,
      ...(info.limits.io ? { io: info.limits.io.map((l) => ({ ...l })) } : {}),
    },
    usage: { ...info.usage },
  };
  if (info.endedAt) copy.endedAt = new Date(info.endedAt);
  return copy;
}

/** Signals the job's main process; a no-op once it has been reaped. */
export function signalMain(job: RunningJob, signal: Deno.Signal): void {
  try {
    job.child.kill(signal);
  } catch {
    // Already exited: its end is being recorded.
  }
}

/** Whether anything is at `path` (not following a final symlink). */
export function existsSync(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs clean-up `work`, logging instead of throwing when it fails: one
 * failed step must not keep the others from running.
 */
export async function settle<T>(
  what: string,
  id: string,
  work: () => T | Promise<T>,
): Promise<T | undefined> {
  try {
    return await work();
  } catch (error) {
    console.error(`Job ${id}: ${what} failed:`, error);
    return undefined;
  }
}
