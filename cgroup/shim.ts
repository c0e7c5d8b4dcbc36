/**
 * The startup shim: `telejob-shim`, a small static C program built from
 * `shim/telejob_shim.c` (see `shim/mod.ts` for where it is found). One exec
 * of it does what the job needs before its first instruction: output file as
 * stdout and stderr, its own pid into every `cgroup.procs`, a new session,
 * the job's uid, gid and groups with no capabilities and `no_new_privs`, every
 * fd above 2 closed, the working directory entered as the job's identity,
 * and then it execs the command with the job's environment.
 *
 * The shim itself starts with an EMPTY environment and is statically linked,
 * so nothing a request puts in the job's env (`LD_PRELOAD`, `BASH_ENV`, ...)
 * runs as root or outside the job's cgroup: the environment is used only at
 * the final exec. Everything is a positional argument; nothing is parsed by
 * a shell.
 *
 * The job leads its own session through the shim's setsid() rather than
 * through `Deno.Command`'s `detached`: `detached` makes Deno fork instead of
 * posix_spawn, which blocks the server's only thread for about a millisecond
 * per start. The job keeps the pid Deno is waiting on.
 * @module
 */

/**
 * Exit code of the shim when it failed before the exec (output, cgroup,
 * identity, working directory, exec). It then wrote one line starting with
 * {@linkcode SHIM_FAILURE_PREFIX} to the output file.
 */
export const SHIM_FAILURE_EXIT_CODE = 125;
/** How the shim's own failure line starts in the output file. */
export const SHIM_FAILURE_PREFIX = "telejob-shim: ";

/** The Unix identity a job runs as. */
export interface RunAs {
  /** User id; 0 only where the server's policy allows root. */
  uid: number;
  /** Primary group id. */
  gid: number;
  /** Supplementary group ids (none for the default identities). */
  groups: readonly number[];
}

/** Options of {@linkcode shimCommand}. */
export interface ShimOptions {
  /** Path of the `telejob-shim` executable. */
  shim: string;
  /** `cgroup.procs` files to enter, in order (the job's `procsFiles`). */
  procsFiles: readonly string[];
  /** The job's output file, opened for appending (created if missing). */
  outputPath: string;
  /** Working directory, entered after the privileges are dropped. */
  cwd: string;
  /** The job's complete environment, used only at the final exec. */
  env: Readonly<Record<string, string>>;
  /** Who the job runs as. */
  runAs: RunAs;
}

function checkNoNul(what: string, value: string): void {
  if (value.includes("\0")) {
    throw new Error(
      `Invalid ${what}: it contains a NUL byte, which cannot be passed to a process; remove it`,
    );
  }
}

function checkId(what: string, value: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value > 0xfffffffe) {
    throw new Error(`Invalid ${what} ${value}: give 0 to 4294967294`);
  }
  return String(value);
}

/**
 * The program and arguments that run `command` with `args` as
 * `options.runAs`, inside the job's cgroup, in a new session, with stdout
 * and stderr appended to `outputPath`. Spawn the result with
 * `new Deno.Command(program, { args, stdin: "null", stdout: "null",
 * stderr: "null", clearEnv: true })` and NOT `detached`.
 *
 * `command` should be an absolute path (the engine resolves it on PATH
 * first); it is exec'd as given.
 */
export function shimCommand(
  command: string,
  args: readonly string[],
  options: ShimOptions,
): { program: string; args: string[] } {
  if (command === "") {
    throw new Error("Invalid command: it is empty; give a program to run");
  }
  checkNoNul("command", command);
  args.forEach((arg, i) => checkNoNul(`argument ${i + 1}`, arg));
  checkNoNul("output path", options.outputPath);
  checkNoNul("working directory", options.cwd);
  options.procsFiles.forEach((file) => checkNoNul("procs file", file));
  const env = Object.entries(options.env).map(([key, value]) => {
    if (key === "" || key.includes("=")) {
      throw new Error(`Invalid environment variable name ${key}`);
    }
    const entry = `${key}=${value}`;
    checkNoNul("environment", entry);
    return entry;
  });
  const { uid, gid, groups } = options.runAs;
  return {
    program: options.shim,
    args: [
      options.outputPath,
      options.cwd,
      checkId("uid", uid),
      checkId("gid", gid),
      groups.map((group) => checkId("group", group)).join(","),
      String(options.procsFiles.length),
      ...options.procsFiles,
      String(env.length),
      ...env,
      command,
      ...args,
    ],
  };
}
