/**
 * The startup shim: a `/bin/sh` one-liner that puts itself into the job's
 * cgroup, points stdout and stderr at the job's output file and then execs
 * the user's command. Because the shell writes its own pid (`$$`) into every
 * `cgroup.procs` before the `exec`, the user's code never runs outside its
 * limits, and because it is a shell rather than a second Deno process, a
 * start costs about a millisecond.
 *
 * The command and its arguments are positional parameters of the script,
 * never part of its text, so no argument can inject shell code.
 *
 * The job leads its own session through `setsid(1)` at the end of the shim
 * rather than through `Deno.Command`'s `detached`: `detached` makes Deno fork
 * instead of posix_spawn, which blocks the server's only thread for about a
 * millisecond per start. setsid(1) does not fork here because the shim is not
 * a process-group leader, so the job keeps the pid Deno is waiting on.
 * @module
 */

/** Exit code of the shim when it could not enter the cgroup or open the output. */
export const SHIM_FAILURE_EXIT_CODE = 125;

/** Where util-linux's setsid(1) lives; Debian ships it in an essential package. */
const SETSID_CANDIDATES = ["/usr/bin/setsid", "/bin/setsid"];

function findSetsid(): string {
  for (const path of SETSID_CANDIDATES) {
    try {
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // Not here; try the next one.
    }
  }
  throw new Error(
    `setsid(1) not found at ${
      SETSID_CANDIDATES.join(" or ")
    }: install util-linux`,
  );
}

let setsidPath: string | undefined;

/**
 * The script. Positional parameters: `$1` output file, `$2` number of procs
 * files, then the procs files, then setsid(1), then the command and its
 * arguments.
 *
 * - `command exec` keeps a failed redirection from ending the shell before it
 *   can exit with the shim's own code.
 * - One fd is opened in append mode and shared by stdout and stderr, so their
 *   interleaving is what a terminal would show, and concurrent writers to the
 *   file never overwrite each other.
 * - `printf` is a builtin, so `$$` is written by the process that will exec
 *   the command.
 */
export const SHIM_SCRIPT = [
  "out=$1; n=$2; shift 2",
  `command exec >>"$out" 2>&1 </dev/null || exit ${SHIM_FAILURE_EXIT_CODE}`,
  'while [ "$n" -gt 0 ]; do',
  '  if ! printf "%s\\n" "$$" >"$1"; then',
  '    printf "telejob: could not move the job into its cgroup (%s); the command was not run\\n" "$1"',
  `    exit ${SHIM_FAILURE_EXIT_CODE}`,
  "  fi",
  "  shift; n=$((n - 1))",
  "done",
  'exec "$@"',
].join("\n");

/** Options of {@linkcode shimCommand}. */
export interface ShimOptions {
  /** `cgroup.procs` files to enter, in order (the job's `procsFiles`). */
  procsFiles: readonly string[];
  /** The job's output file, opened for appending (created if missing). */
  outputPath: string;
}

function checkNoNul(what: string, value: string): void {
  if (value.includes("\0")) {
    throw new Error(
      `Invalid ${what}: it contains a NUL byte, which cannot be passed to a process; remove it`,
    );
  }
}

/**
 * The program and arguments that run `command` with `args` inside the job's
 * cgroup, in a new session, with stdout and stderr appended to `outputPath`.
 * Spawn the result with `new Deno.Command(program, { args, stdin: "null",
 * stdout: "null", stderr: "null", clearEnv: true, env, cwd })` and NOT
 * `detached` (a process-group leader would make setsid(1) fork).
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
  options.procsFiles.forEach((file) => checkNoNul("procs file", file));
  return {
    program: "/bin/sh",
    args: [
      "-c",
      SHIM_SCRIPT,
      "telejob-shim",
      options.outputPath,
      String(options.procsFiles.length),
      ...options.procsFiles,
      setsidPath ??= findSetsid(),
      command,
      ...args,
    ],
  };
}
