/**
 * Errors the job engine reports to its callers. The gRPC service maps
 * `code` to a status code; messages are written for the person who made the
 * request. {@linkcode JobError} itself is defined in `common/errors.ts`, so
 * that the cgroup layer can throw it without importing the engine.
 * @module
 */

import { JobError } from "../../common/errors.ts";

export { JobError, type JobErrorCode } from "../../common/errors.ts";

/** The error for a job that does not exist or belongs to someone else. */
export function jobNotFound(id: string): JobError {
  return new JobError(
    "not_found",
    `Job ${JSON.stringify(id)} not found: check the id with "telejob list"`,
  );
}
