/**
 * Every rule a job request must meet, and its limits, in one place (as runc
 * keeps `libcontainer/configs/validate/`). The engine, the gRPC service and
 * the CLI all call these, so a job id, a grace period or an env entry gets
 * the same verdict and the same message whichever layer sees it first. It
 * imports nothing of ours but {@linkcode JobError}, so every layer may use it
 * (see `tools/check_imports.ts`).
 *
 * Each check throws a `JobError("invalid_argument", ...)` naming the request
 * field at fault; the caller says which field that is (the engine says
 * `env`, the service `env[3]`), and what to call the value in the message.
 *
 * ```ts
 * import { checkJobId, parseEnvEntry } from "./validate.ts";
 * checkJobId("42");
 * parseEnvEntry("A=b=c", { field: "env", what: "Env entry 1" }); // ["A", "b=c"]
 * ```
 * @module
 */
import { JobError } from "./errors.ts";

/** Linux refuses longer single arguments or env entries (MAX_ARG_STRLEN). */
export const MAX_ARG_BYTES = 128 * 1024;
/** Most arguments a job may have. */
export const MAX_ARGS = 10_000;
/** Most environment entries a job may add. */
export const MAX_ENV = 1_000;
/** Most bytes of command, arguments and env together (ARG_MAX is 2 MiB here). */
export const MAX_EXEC_BYTES = 1024 * 1024;
/**
 * Longest grace period a stop or a shutdown accepts: 24 h, as docs/server.md
 * documents. (It is also well under the 2^31 − 1 ms a timer can wait.)
 */
export const MAX_GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * A job id: a positive decimal number the store handed out, at most 16
 * digits so that it stays a safe integer (no leading zero, so each id has
 * one spelling).
 */
export const JOB_ID_PATTERN = /^[1-9][0-9]{0,15}$/;
/** An env key: POSIX portable names plus lower case, as shells accept them. */
export const ENV_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A login name as useradd accepts it (a trailing `$` for machine accounts). */
export const LOGIN_PATTERN = /^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}\$?$/;

/** Which request field a value came from, and what to call it in a message. */
export interface Subject {
  /** The request field at fault, e.g. `env` or `args[3]`. */
  field: string;
  /** The value as a sentence starts with it, e.g. `Env entry 4`. */
  what: string;
}

function invalid(field: string, message: string): JobError {
  return new JobError("invalid_argument", message, field);
}

function shown(value: string, max: number): string {
  return value.length > max
    ? `${JSON.stringify(value.slice(0, max))}…`
    : JSON.stringify(value);
}

/** Returns `id` if it is a job id ({@linkcode JOB_ID_PATTERN}), else throws. */
export function checkJobId(id: unknown, field = "id"): string {
  if (typeof id !== "string" || !JOB_ID_PATTERN.test(id)) {
    throw invalid(
      field,
      `Job id ${
        typeof id === "string" ? shown(id, 40) : String(id)
      } is not valid: ids are positive decimal numbers such as 42`,
    );
  }
  return id;
}

/**
 * Returns a grace period in milliseconds if it is a number from 0 to
 * {@linkcode MAX_GRACE_MS}, else throws.
 */
export function checkGraceMs(ms: unknown, field = "graceMs"): number {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw invalid(field, `Grace period ${String(ms)} is not a number`);
  }
  if (ms < 0) {
    throw invalid(
      field,
      `Grace period ${ms / 1000}s is negative: use 0 to kill at once`,
    );
  }
  if (ms > MAX_GRACE_MS) {
    throw invalid(
      field,
      `Grace period ${ms / 1000}s is longer than the maximum of ${
        MAX_GRACE_MS / 1000
      }s (24 h)`,
    );
  }
  return ms;
}

/** Throws if `value` holds a NUL byte, which exec cannot pass on. */
export function checkNoNul(value: string, subject: Subject): void {
  if (value.includes("\0")) {
    throw invalid(
      subject.field,
      `${subject.what} contains a NUL byte, which cannot be passed to a process: remove it`,
    );
  }
}

/** Bytes of `value` in UTF-8, without allocating the encoding. */
export function utf8Length(value: string): number {
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Checks one command, argument or env string as exec takes it: no NUL byte,
 * at most {@linkcode MAX_ARG_BYTES}. Returns its length in UTF-8.
 */
export function checkExecString(value: string, subject: Subject): number {
  checkNoNul(value, subject);
  const bytes = utf8Length(value);
  if (bytes > MAX_ARG_BYTES) {
    throw invalid(
      subject.field,
      `${subject.what} is ${bytes} bytes long; Linux allows at most ${MAX_ARG_BYTES} bytes per argument or env entry`,
    );
  }
  return bytes;
}

/**
 * Splits a `KEY=VALUE` env entry at its first `=`, checking that it has no
 * NUL byte and that the key is {@linkcode ENV_KEY_PATTERN}.
 */
export function parseEnvEntry(
  entry: string,
  subject: Subject,
): [key: string, value: string] {
  checkNoNul(entry, subject);
  const eq = entry.indexOf("=");
  const key = eq < 0 ? entry : entry.slice(0, eq);
  if (eq < 0 || !ENV_KEY_PATTERN.test(key)) {
    throw invalid(
      subject.field,
      `${subject.what} (${
        shown(entry, 64)
      }) is not KEY=VALUE with a key of letters, digits and underscores not starting with a digit`,
    );
  }
  return [key, entry.slice(eq + 1)];
}

/** Throws unless `cwd` is an absolute path without a NUL byte. */
export function checkCwd(cwd: string, field = "cwd"): void {
  checkNoNul(cwd, { field, what: "Working directory" });
  if (!cwd.startsWith("/")) {
    throw invalid(
      field,
      `Working directory ${
        JSON.stringify(cwd)
      } is not absolute: give a path starting with /`,
    );
  }
}

/** What {@linkcode checkExecSize} counts: a command line and its env. */
export interface ExecRequest {
  /** The program. */
  command: string;
  /** Its arguments. */
  args: readonly string[];
  /** The env entries the request adds. */
  env: readonly string[];
}

/**
 * Checks a command line against what exec can take: at most
 * {@linkcode MAX_ARGS} arguments and {@linkcode MAX_ENV} env entries, each
 * string checked by {@linkcode checkExecString} (env entries also by
 * {@linkcode parseEnvEntry}), and at most {@linkcode MAX_EXEC_BYTES} in all.
 * Fields are named as the API names them (`args[3]`, `env[0]`).
 */
export function checkExecSize(request: ExecRequest): void {
  const { command, args, env } = request;
  if (args.length > MAX_ARGS) {
    throw invalid(
      "args",
      `${args.length} arguments given; at most ${MAX_ARGS} are allowed`,
    );
  }
  if (env.length > MAX_ENV) {
    throw invalid(
      "env",
      `${env.length} entries given; at most ${MAX_ENV} are allowed`,
    );
  }
  // Each string plus its NUL and its pointer in argv/envp, as exec counts it.
  let total = checkExecString(command, { field: "command", what: "Command" }) +
    9;
  args.forEach((arg, i) => {
    total += checkExecString(arg, {
      field: `args[${i}]`,
      what: `Argument ${i + 1}`,
    }) + 9;
  });
  env.forEach((entry, i) => {
    const subject = { field: `env[${i}]`, what: `Env entry ${i + 1}` };
    total += checkExecString(entry, subject) + 9;
    parseEnvEntry(entry, subject);
  });
  if (total > MAX_EXEC_BYTES) {
    throw invalid(
      "args",
      `Command, arguments and env take ${total} bytes; at most ${MAX_EXEC_BYTES} are allowed`,
    );
  }
}

/** Returns `user` if it is a login name ({@linkcode LOGIN_PATTERN}). */
export function checkLoginName(user: string, field = "user"): string {
  if (!LOGIN_PATTERN.test(user)) {
    throw invalid(
      field,
      `${
        JSON.stringify(user.slice(0, 64))
      } is not a login name: use letters, digits, ".", "_", "-" and "@" (at most 64)`,
    );
  }
  return user;
}
