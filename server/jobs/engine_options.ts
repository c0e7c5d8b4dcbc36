/**
 * How an engine is set up ({@linkcode EngineOptions}), its defaults, and the
 * checks of the numbers its methods take.
 * @module
 */
import type { CgroupDriver, Limits } from "../../cgroup/mod.ts";
import { checkGraceMs } from "../../common/validate.ts";
import { JobError } from "./errors.ts";
import type { IdRange, RunAsRule } from "./identity.ts";

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
  /** Which owners may run jobs as which login accounts (`--run-as`). */
  runAs?: readonly RunAsRule[];
  /** Range of the owners' default identities (`--uid-range`). */
  uidRange?: IdRange;
  /** Path of the startup helper (`--shim`); found or built when absent. */
  shimPath?: string;
}

/** Default per-job output cap: 1 GiB. */
export const DEFAULT_OUTPUT_LIMIT_BYTES = 1024 * 1024 * 1024;
/** Default grace period of `stop` and `shutdown`: 10 s. */
export const DEFAULT_GRACE_MS = 10_000;

/** A stop's or shutdown's grace in whole ms; the default when absent. */
export function parseGrace(graceMs: unknown): number {
  if (graceMs === undefined) return DEFAULT_GRACE_MS;
  return Math.floor(checkGraceMs(graceMs));
}

/** A Logs offset or tail, checked against `max`; undefined when absent. */
export function parseByteCount(
  value: unknown,
  field: string,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 ||
    value > max
  ) {
    throw new JobError(
      "invalid_argument",
      `${field === "tail" ? "Tail" : "Offset"} ${
        String(value)
      } is out of range: give a whole number of bytes from 0 to ${max}${
        field === "offset" ? " (the output cap: no output lies beyond it)" : ""
      }`,
      field,
    );
  }
  return value;
}
