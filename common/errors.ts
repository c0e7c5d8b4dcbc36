/**
 * The error a request's caller caused or can act on, with a machine-readable
 * code. It lives here, below every layer, so that the cgroup drivers can
 * refuse a limit they cannot enforce with the same error the engine reports,
 * without importing the engine (dependencies point one way: see
 * `tools/check_imports.ts`). The gRPC service maps `code` to a status code.
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
