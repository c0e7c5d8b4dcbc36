/**
 * The service's checks of a request before it reaches the engine. The rules
 * themselves (ids, grace, env entries, NUL bytes, the absolute cwd, exec
 * sizes) live in `common/validate.ts`, shared with the engine and the CLI;
 * here only what the wire adds: proto3's zero value meaning "absent", a
 * `Duration` that must be normalised, and 64-bit numbers JavaScript cannot
 * hold. Every refusal is a `JobError("invalid_argument")` naming the field,
 * which the service sends as `field: message`.
 * @module
 */
import type {
  Limits as ProtoLimits,
  LogsRequest,
  StartRequest,
  StopRequest,
} from "../proto/gen/telejob/v1/telejob.ts";
import type { IoLimit, Limits } from "../cgroup/mod.ts";
import type { JobEngine } from "./jobs/mod.ts";
import { JobError } from "../common/errors.ts";
import {
  checkCwd,
  checkExecSize,
  checkGraceMs,
  checkJobId,
  checkLoginName,
} from "../common/validate.ts";

function invalid(field: string, message: string): JobError {
  return new JobError("invalid_argument", message, field);
}

/** Returns a request's job id, refusing an absent or malformed one. */
export function checkId(id: string): string {
  // proto3 sends an absent string as "".
  if (id === "") {
    throw invalid("id", "missing job id; pass the id that start printed");
  }
  return checkJobId(id);
}

/**
 * Converts the API's per-job limits (0 means "the server's default") to the
 * engine's. Ranges and ceilings are the engine's business (it knows the
 * server's limits and the host); here only what the wire format cannot
 * express for it: a negative or non-finite CPU, and duplicate devices.
 */
function toEngineLimits(limits: ProtoLimits | undefined): Limits | undefined {
  if (!limits) return undefined;
  const out: Limits = {};
  if (limits.cpu !== 0) {
    if (!Number.isFinite(limits.cpu) || limits.cpu < 0) {
      throw invalid(
        "limits.cpu",
        `${limits.cpu} is not a number of CPUs; use 0 for the server's default or a positive number like 0.5`,
      );
    }
    out.cpu = limits.cpu;
  }
  if (limits.memoryBytes !== 0) out.memoryBytes = limits.memoryBytes;
  if (limits.pids !== 0) out.pids = limits.pids;
  if (limits.io.length > 0) {
    const seen = new Set<string>();
    out.io = limits.io.map((io, i): IoLimit => {
      const field = `limits.io[${i}]`;
      const device = `${io.major}:${io.minor}`;
      if (seen.has(device)) {
        throw invalid(
          field,
          `device ${device} appears twice; give one entry per device`,
        );
      }
      seen.add(device);
      const entry: IoLimit = { major: io.major, minor: io.minor };
      for (const key of ["rbps", "wbps", "riops", "wiops"] as const) {
        if (io[key] !== 0) entry[key] = io[key];
      }
      if (Object.keys(entry).length === 2) {
        throw invalid(
          field,
          `device ${device} has no rate; set rbps, wbps, riops or wiops`,
        );
      }
      return entry;
    });
  }
  return out;
}

/** Checks a Start request and turns it into the engine's start request. */
export function checkStart(
  request: StartRequest,
): Parameters<JobEngine["start"]>[1] {
  if (request.command === "") {
    throw invalid(
      "command",
      "missing command; pass the program to run, e.g. sleep",
    );
  }
  checkExecSize(request);
  if (request.cwd !== "") checkCwd(request.cwd);
  return {
    command: request.command,
    args: request.args,
    env: request.env,
    cwd: request.cwd === "" ? undefined : request.cwd,
    limits: toEngineLimits(request.limits),
    user: request.user ? checkLoginName(request.user) : undefined,
  };
}

/** Returns a Stop request's grace in whole milliseconds, if it has one. */
export function checkGrace(request: StopRequest): number | undefined {
  const grace = request.grace;
  if (!grace) return undefined;
  const { seconds, nanos } = grace;
  if (
    !Number.isInteger(seconds) || !Number.isInteger(nanos) ||
    nanos <= -1e9 || nanos >= 1e9 || (seconds > 0 && nanos < 0) ||
    (seconds < 0 && nanos > 0)
  ) {
    throw invalid("grace", "is not a valid duration");
  }
  return Math.ceil(checkGraceMs(seconds * 1000 + nanos / 1e6, "grace"));
}

/** Checks a Logs request's numbers and drops proto3's absent offset. */
export function checkLogs(request: LogsRequest): {
  follow: boolean;
  offset?: number;
  tail?: number;
} {
  // The engine checks offset against the output cap; here only what a
  // number from the wire can hold.
  for (
    const [field, value] of [["offset", request.offset], [
      "tail",
      request.tail,
    ]] as const
  ) {
    if (
      value !== undefined &&
      (!Number.isSafeInteger(value) || value < 0)
    ) {
      throw invalid(
        field,
        `${value} is out of range; give a whole number of bytes from 0 to ${Number.MAX_SAFE_INTEGER}`,
      );
    }
  }
  return {
    follow: request.follow,
    offset: request.offset === 0 ? undefined : request.offset,
    tail: request.tail,
  };
}
