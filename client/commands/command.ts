/**
 * What a CLI command is: its spec (flags, positionals, help), an optional
 * check of its flag values that runs before connecting, and its handler.
 * @module
 */
import type { CommandSpec, ParsedArgs } from "../../common/args.ts";
import type { Connection } from "../connection.ts";
import type { Output } from "../output.ts";

/** One `telejob` command; `cliMain` adds the global flags to its spec. */
export interface Command {
  /** The word after `telejob`, like `start`. */
  name: string;
  /** Its flags, positionals and help; `name` is `telejob <name>`. */
  spec: CommandSpec;
  /**
   * Checks the flag values before connecting, so a typo costs no round trip;
   * throws what the shared parsers throw.
   */
  validate?(args: ParsedArgs): void;
  /** The job the command is about, named in its error messages. */
  jobId?(args: ParsedArgs): string;
  /** Runs the command and returns the exit code. */
  run(ctx: Context): Promise<number>;
}

/** What a command runs with. */
export interface Context {
  /** The parsed command line, global flags included. */
  args: ParsedArgs;
  /** The open connection to telejob-server. */
  conn: Connection;
  /** Stdout and stderr. */
  out: Output;
  /** Go time layout of STARTED and STOPPED. */
  layout: string;
  /** `--output json`. */
  json: boolean;
  /** `--output wide`: the table plus USER and UID. */
  wide: boolean;
}

/** The first positional: the job ID of stop, status and logs. */
export function firstPositional(args: ParsedArgs): string {
  return args.positionals[0];
}
