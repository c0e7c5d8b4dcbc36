/**
 * Public types of the job engine. The engine knows nothing of gRPC or TLS:
 * the service in `server/` maps these to the API.
 * @module
 */
import type { Limits, Usage } from "../../cgroup/mod.ts";

export type { Limits, Usage };

/** What a caller asks the engine to run. */
export interface StartRequest {
  /** Program name (looked up on the job's PATH) or absolute path. */
  command: string;
  /** Arguments, without the command itself. */
  args?: string[];
  /** Extra environment, `KEY=VALUE` entries, added to the job's base env. */
  env?: string[];
  /** Working directory (absolute); the identity's home when absent. */
  cwd?: string;
  /** Per-job limits; each may only be tighter than the server's. */
  limits?: Limits;
  /**
   * Login account to run as; the server's `--run-as` policy must allow it.
   * Empty or absent: the owner's own unprivileged identity.
   */
  user?: string;
}

/** Whether the job's processes may still be running. */
export type JobState = "running" | "finished";

/** Everything `status` and `list` show about a job. */
export interface JobInfo {
  /** Job id: a decimal number, unique for the data dir's lifetime. */
  id: string;
  /** The user (certificate CN) who started it. */
  owner: string;
  command: string;
  args: string[];
  cwd: string;
  state: JobState;
  startedAt: Date;
  /** When the job ended; absent while running. */
  endedAt?: Date;
  /** Exit code when the main process exited normally. */
  exitCode?: number;
  /** Signal name (e.g. `SIGKILL`) when the main process was killed by one. */
  signal?: string;
  /** The kernel's OOM killer killed a process of the job (cgroup counter). */
  oomKilled: boolean;
  /** Stopped through `stop`; `stoppedBy` names who asked. */
  stopped: boolean;
  stoppedBy?: string;
  /** The job was running when an earlier server process died. */
  lostInRestart: boolean;
  /** The job reached the per-job output cap and was killed for it. */
  outputLimitReached: boolean;
  /** Limits in force for this job. */
  limits: Limits;
  /** Usage counters; final once the job has finished. */
  usage: Usage;
  /** Bytes of output kept so far. */
  outputBytes: number;
  /** The Unix account the job runs as (`telejob-<uid>` for a default identity). */
  account: string;
  /** Its uid. */
  uid: number;
  /**
   * Why the job never ran its command (the startup shim failed: a working
   * directory it could not enter, a command it could not execute, ...).
   */
  startError?: string;
}

/** Options of `logs`. */
export interface LogsOptions {
  /** Keep streaming new output until the job has ended and all is read. */
  follow?: boolean;
  /** Start at this byte offset (default 0). */
  offset?: number;
  /** Start this many bytes before the current end (overrides offset). */
  tail?: number;
  /** Ends the stream early (client went away). */
  signal?: AbortSignal;
  /**
   * The caller is done with each chunk when it asks for the next (it copies
   * or has sent the bytes): chunks are then views of one reused buffer,
   * which about doubles the read rate. Default false: every chunk is a copy
   * the caller may keep.
   */
  reuseBuffer?: boolean;
}

/** Options of `stop`. */
export interface StopOptions {
  /** Milliseconds between SIGTERM and SIGKILL; 0 kills at once. Default 10 s. */
  graceMs?: number;
}
