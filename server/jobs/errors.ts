/**
 * Errors the job engine reports to its callers. The gRPC service maps
 * `code` to a status code; messages are written for the person who made the
 * request.
 * @module
 */

/** Machine-readable kind of a {@linkcode JobError}. */
export type JobErrorCode =
  | "failed_precondition"
  | "invalid_argument"
  | "not_found"
  | "permission_denied"
  | "resource_exhausted"
  | "unavailable";

/** An error that the caller caused or can act on. */
export class JobError extends Error {
  /** Kind of error, mapped to a gRPC status code by the service. */
  readonly code: JobErrorCode;
  /** The request field at fault, for `invalid_argument`. */
  readonly field?: string;

  /** Creates an error; `field` names the request field at fault. */
  constructor(code: JobErrorCode, message: string, field?: string) {
    super(message);
    this.name = "JobError";
    this.code = code;
    this.field = field;
  }
}

/** The error for a job that does not exist or belongs to someone else. */
export function jobNotFound(id: string): JobError {
  return new JobError(
    "not_found",
    `Job ${JSON.stringify(id)} not found: check the id with "telejob list"`,
  );
}
