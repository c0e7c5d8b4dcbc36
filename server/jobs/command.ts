/**
 * Validation of a start request and resolution of its command, done before
 * anything is created or spawned: a request that fails here leaves no job,
 * no cgroup and no output file behind.
 * @module
 */
import { homedir } from "node:os";
import { dirname } from "node:path";
import { type Credentials, permits, unsearchable } from "./accounts.ts";
import { JobError } from "./errors.ts";
import { checkCwd, checkNoNul, parseEnvEntry } from "../../common/validate.ts";
import type { StartRequest } from "./types.ts";

/** The PATH every job starts with unless its request sets its own. */
export const BASE_PATH =
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** A start request that passed validation, ready to spawn. */
export interface ResolvedCommand {
  /** Absolute path of the executable file the command resolved to. */
  program: string;
  /** The command as the user gave it (what status shows). */
  command: string;
  /** Arguments, without the command. */
  args: string[];
  /** The job's complete environment (jobs never inherit the server's). */
  env: Record<string, string>;
  /** Absolute working directory. */
  cwd: string;
}

/** Options of {@linkcode resolveCommand}. */
export interface ResolveOptions {
  /** HOME of the job's base environment (default: the server user's). */
  home?: string;
  /** USER and LOGNAME of the job's base environment (unset by default). */
  user?: string;
  /**
   * Working directory when the request names none (default `/`), already
   * known to be enterable by `runAs`.
   */
  defaultCwd?: string;
  /**
   * Who the job runs as: its working directory must be searchable and its
   * command executable by them (checked before anything is created).
   */
  runAs?: Credentials & { name: string };
}

function invalid(field: string, message: string): JobError {
  return new JobError("invalid_argument", message, field);
}

/**
 * Builds the job's environment: a clean base (PATH and HOME) with the
 * request's `KEY=VALUE` entries on top, later entries overriding earlier
 * ones. The server's own environment is never passed on, so jobs do not see
 * the server's secrets or settings.
 */
export function buildEnv(
  entries: readonly string[] | undefined,
  options: ResolveOptions = {},
): Record<string, string> {
  const env: Record<string, string> = {
    PATH: BASE_PATH,
    HOME: options.home ?? homedir(),
  };
  if (options.user !== undefined) {
    env.USER = options.user;
    env.LOGNAME = options.user;
  }
  for (const [i, entry] of (entries ?? []).entries()) {
    if (typeof entry !== "string") {
      throw invalid("env", `Env entry ${i + 1} is not a string`);
    }
    const [key, value] = parseEnvEntry(entry, {
      field: "env",
      what: `Env entry ${i + 1}`,
    });
    env[key] = value;
  }
  return env;
}

type FileCheck = "ok" | "missing" | "not_file" | "not_executable";

// Synchronous stats, on the start path (see the `cgroup/fs.ts` module doc).
function checkExecutable(path: string): FileCheck {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    return "missing";
  }
  if (!info.isFile) return "not_file";
  // Any execute bit: root may run a file when at least one is set, which is
  // what execve itself checks for the superuser.
  return info.mode !== null && (info.mode & 0o111) !== 0
    ? "ok"
    : "not_executable";
}

/**
 * Validates a start request and resolves its command to an absolute
 * executable file on the job's PATH (the request env's PATH when it sets one,
 * else {@linkcode BASE_PATH}). A command containing a `/` is taken as a path,
 * relative ones against the job's working directory, as a shell would.
 *
 * Throws a {@linkcode JobError} `invalid_argument` naming the field at fault
 * (`command`, `args`, `env`, `cwd`).
 */
export function resolveCommand(
  request: StartRequest,
  options: ResolveOptions = {},
): Promise<ResolvedCommand> {
  try {
    return Promise.resolve(resolve(request, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

function resolve(
  request: StartRequest,
  options: ResolveOptions,
): ResolvedCommand {
  if (request === null || typeof request !== "object") {
    throw invalid("command", "The start request is missing");
  }
  const { command } = request;
  if (typeof command !== "string" || command.length === 0) {
    throw invalid("command", "Command is empty: give the program to run");
  }
  checkNoNul(command, { field: "command", what: "Command" });
  const args = request.args ?? [];
  if (!Array.isArray(args)) {
    throw invalid("args", "Args must be a list of strings");
  }
  for (const [i, arg] of args.entries()) {
    if (typeof arg !== "string") {
      throw invalid("args", `Argument ${i + 1} is not a string`);
    }
    checkNoNul(arg, { field: "args", what: `Argument ${i + 1}` });
  }
  if (request.env !== undefined && !Array.isArray(request.env)) {
    throw invalid("env", "Env must be a list of KEY=VALUE strings");
  }
  const env = buildEnv(request.env, options);

  const cwd = request.cwd === undefined || request.cwd === ""
    ? options.defaultCwd ?? "/"
    : request.cwd;
  if (typeof cwd !== "string") {
    throw invalid("cwd", "Working directory must be a string");
  }
  checkCwd(cwd);
  let cwdInfo: Deno.FileInfo | undefined;
  try {
    cwdInfo = Deno.statSync(cwd);
  } catch {
    // Reported below together with "not a directory".
  }
  if (!cwdInfo?.isDirectory) {
    throw invalid(
      "cwd",
      `Working directory ${
        JSON.stringify(cwd)
      } does not exist or is not a directory`,
    );
  }

  const who = options.runAs;
  const explicit = request.cwd !== undefined && request.cwd !== "";
  const blocked = who && explicit && unsearchable(cwd, who);
  if (who && blocked) {
    throw new JobError(
      "failed_precondition",
      `Working directory ${
        JSON.stringify(cwd)
      } cannot be entered by ${who.name} (uid ${who.uid}), the account the job runs as: ${blocked} is not searchable by it. Pick a directory it may enter, or leave --cwd out to use its home`,
      "cwd",
    );
  }
  const program = lookPath(command, env.PATH, cwd);
  if (who) checkRunnable(program, who);
  return { program, command, args: [...args], env, cwd };
}

function checkRunnable(
  program: string,
  who: Credentials & { name: string },
): void {
  const blocked = unsearchable(dirname(program), who);
  let info: Deno.FileInfo | undefined;
  try {
    info = Deno.statSync(program);
  } catch {
    // lookPath found it a moment ago; the exec will report it if it went.
  }
  if (blocked === undefined && (!info || permits(info, who, 1))) return;
  throw new JobError(
    "failed_precondition",
    `Command ${program} cannot be run by ${who.name} (uid ${who.uid}), the account the job runs as: ${
      blocked === undefined
        ? "it has no execute permission for it"
        : `${blocked} is not searchable by it`
    }`,
    "command",
  );
}

function lookPath(command: string, path: string, cwd: string): string {
  if (command.includes("/")) {
    const full = command.startsWith("/")
      ? command
      : `${cwd.replace(/\/+$/, "")}/${command}`;
    const check = checkExecutable(full);
    if (check === "ok") return full;
    const why = check === "missing"
      ? "does not exist"
      : check === "not_file"
      ? "is not a regular file"
      : "is not executable (no execute permission)";
    throw invalid("command", `Command ${JSON.stringify(command)} ${why}`);
  }
  let notExecutable: string | undefined;
  for (const dir of path.split(":")) {
    // An empty PATH entry means the current directory to a shell; jobs only
    // search absolute directories so a request cannot pick up a file by
    // accident from its working directory.
    if (!dir.startsWith("/")) continue;
    const full = `${dir.replace(/\/+$/, "")}/${command}`;
    const check = checkExecutable(full);
    if (check === "ok") return full;
    if (check === "not_executable") notExecutable ??= full;
  }
  if (notExecutable !== undefined) {
    throw invalid(
      "command",
      `Command ${
        JSON.stringify(command)
      } was found at ${notExecutable} but is not executable (no execute permission)`,
    );
  }
  throw invalid(
    "command",
    `Command ${
      JSON.stringify(command)
    } was not found as an executable file on PATH (${path}): install it or give its absolute path`,
  );
}
