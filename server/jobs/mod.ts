/**
 * The job engine: runs commands under cgroup limits, stops whole process
 * trees, keeps and streams every byte of output, and remembers every job
 * across restarts. It knows nothing of gRPC.
 *
 * STUB: the signatures below are the contract; the engine helper implements them.
 * @module
 */
import type { CgroupDriver, Limits } from "../../cgroup/types.ts";
import type {
  JobInfo,
  LogsOptions,
  StartRequest,
  StopOptions,
} from "./types.ts";

export * from "./types.ts";
export * from "./errors.ts";

/** How an engine is set up. */
export interface EngineOptions {
  /** Directory for the job store and the output files. */
  dataDir: string;
  /** The cgroup driver jobs run under. */
  cgroups: CgroupDriver;
  /** Server-wide limits: the defaults and the ceilings for per-job limits. */
  limits?: Limits;
  /** Per-job output cap in bytes (default 1 GiB). */
  outputLimitBytes?: number;
  /** Users who may see and stop every job. */
  admins?: string[];
  /** Maximum running jobs per user (default unlimited). */
  maxJobsPerUser?: number;
}

/** The job engine. Every method takes the calling user first. */
export class JobEngine {
  /** Opens the store, recovers jobs lost in a restart, removes stale cgroups. */
  static open(_options: EngineOptions): Promise<JobEngine> {
    throw new Error("not implemented");
  }
  /** Starts a job owned by `user`. */
  start(_user: string, _request: StartRequest): Promise<JobInfo> {
    throw new Error("not implemented");
  }
  /** Stops a job: SIGTERM, grace, then SIGKILL to the whole cgroup. Resolves when it has ended. */
  stop(_user: string, _id: string, _options?: StopOptions): Promise<JobInfo> {
    throw new Error("not implemented");
  }
  /** One job's record. */
  status(_user: string, _id: string): Promise<JobInfo> {
    throw new Error("not implemented");
  }
  /** Every job the user may see (all jobs for an admin), oldest first. */
  list(_user: string): Promise<JobInfo[]> {
    throw new Error("not implemented");
  }
  /** The job's output as chunks; see {@linkcode LogsOptions}. */
  logs(
    _user: string,
    _id: string,
    _options?: LogsOptions,
  ): AsyncIterable<Uint8Array> {
    throw new Error("not implemented");
  }
  /** Stops accepting, stops every running job with its grace, removes cgroups, closes the store. */
  shutdown(_options?: StopOptions): Promise<void> {
    throw new Error("not implemented");
  }
}
