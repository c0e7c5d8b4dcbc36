/**
 * The CLI's one error type. Everything that ends a command early carries the
 * exit code it ends with, so `cliMain` needs no table of error classes: 1 for
 * a failure (the message says what to do), 2 for a usage error, and 0 with no
 * message when stdout closed under us (`telejob logs 1 | head`).
 * @module
 */
import { UsageError } from "../common/args.ts";
import { ValueError } from "../common/units.ts";

/** 1 for a failure, 2 for a usage error, 0 for a quiet end. */
export type EndCode = 0 | 1 | 2;

/**
 * Ends the command: its message (if any) goes on one line of stderr, and the
 * CLI exits with `exitCode`.
 */
export class CliError extends Error {
  /** 1 for a failure, 2 for a usage error, 0 for a quiet end. */
  readonly exitCode: EndCode;

  /** Creates the error; the message says what went wrong and what to do. */
  constructor(message: string, options: { exitCode?: EndCode } = {}) {
    super(message);
    this.name = "CliError";
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A usage error (exit 2) with `message`. */
export function usageError(message: string): CliError {
  return new CliError(message, { exitCode: 2 });
}

/**
 * Stdout is closed (`telejob logs 1 | head`): nobody reads on, so the CLI
 * ends quietly with 0.
 */
export function brokenPipe(): CliError {
  return new CliError("", { exitCode: 0 });
}

/** Whether `err` is {@linkcode brokenPipe}'s quiet end. */
export function isBrokenPipe(err: unknown): boolean {
  return err instanceof CliError && err.exitCode === 0;
}

/**
 * `err` as a {@linkcode CliError}, or undefined when it is none of ours (a
 * gRPC status or a bug, for `describeError`). The shared parsers in common/
 * throw their own classes, which are usage errors here; a bad flag value
 * also points at `command`'s help.
 */
export function asCliError(
  err: unknown,
  command: string,
): CliError | undefined {
  if (err instanceof CliError) return err;
  if (err instanceof UsageError) return usageError(err.message);
  if (err instanceof ValueError) {
    return usageError(`${err.message}: run "${command} --help"`);
  }
  return undefined;
}
