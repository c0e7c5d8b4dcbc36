/**
 * Maps what a call failed with (a refused request, an exhausted budget, the
 * engine's {@linkcode JobError}, or a bug) onto the gRPC status the client
 * gets and the detail only the log gets.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { JobError } from "./jobs/errors.ts";
import { BudgetError, isFdExhaustion } from "./budgets.ts";

/** A request the service refuses before it reaches the engine. */
export class RequestError extends Error {
  /** A refusal with the status `code` and a message saying what to do. */
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

const JOB_ERROR_STATUS: Record<JobError["code"], grpc.status> = {
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  permission_denied: grpc.status.PERMISSION_DENIED,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
};

/** A gRPC status for the client plus, for internal errors, detail for the log. */
export interface MappedError {
  /** The status code sent. */
  code: grpc.status;
  /** The message sent to the client. */
  details: string;
  /** What the operator sees in the log (never sent). */
  logDetail?: string;
}

/**
 * Maps an error from validation or the engine to what the client gets.
 * Anything unexpected becomes INTERNAL with a reference to the log line.
 */
export function mapError(error: unknown): MappedError {
  if (error instanceof RequestError) {
    return { code: error.code, details: error.message };
  }
  if (error instanceof BudgetError) {
    return { code: grpc.status.RESOURCE_EXHAUSTED, details: error.message };
  }
  if (isFdExhaustion(error)) {
    // Before anything reads error.stack, which panics Deno at EMFILE
    // (see isFdExhaustion).
    return {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details:
        "The server is out of file descriptors; retry later (its operator can raise LimitNOFILE or lower the connection budgets)",
      logDetail: `out of file descriptors: ${
        (error as { message?: string }).message
      }`,
    };
  }
  if (error instanceof JobError) {
    const code = JOB_ERROR_STATUS[error.code];
    if (code !== undefined) {
      const details = error.code === "invalid_argument" && error.field &&
          !error.message.startsWith(`${error.field}:`)
        ? `${error.field}: ${error.message}`
        : error.message;
      return { code, details };
    }
  }
  const reference = crypto.randomUUID().slice(0, 8);
  const detail = error instanceof Error
    ? (error.stack ?? `${error.name}: ${error.message}`)
    : String(error);
  return {
    code: grpc.status.INTERNAL,
    details:
      `Internal server error (reference ${reference}); the server log has the details, retry or report it`,
    logDetail: `[${reference}] ${detail}`,
  };
}

/** The status's name for the log, like `NOT_FOUND`. */
export function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}
