/**
 * `telejob run`: start a job, stream its output, and exit with its code.
 * @module
 */
import { constants } from "node:os";
import { parseDuration } from "../../common/units.ts";
import { type Job, JobState } from "../../proto/gen/telejob/v1/telejob.ts";
import { CliError, isBrokenPipe } from "../errors.ts";
import type { Command, Context } from "./command.ts";
import { JOB_FLAGS, startRequest } from "./start.ts";

function signalNumber(name: string): number | undefined {
  return (constants.signals as Record<string, number>)[name];
}

/** The shell-style exit code of an ended job: its code, or 128+signal. */
export function exitCodeOf(job: Job): number {
  if (job.exitCode !== undefined) return job.exitCode;
  if (job.oomKilled) return 128 + 9;
  const n = job.signal ? signalNumber(job.signal) : undefined;
  return n === undefined ? 1 : 128 + n;
}

async function runJob(ctx: Context): Promise<number> {
  const graceMs = parseDuration("--grace", ctx.args.string("grace")!);
  const id = await ctx.conn.start(startRequest(ctx.args));
  let interrupts = 0;
  const stops: Promise<unknown>[] = [];
  let stopError: unknown;
  const onInterrupt = () => {
    interrupts++;
    // Keep streaming while the job shuts down, so its last words show.
    stops.push(
      ctx.conn.stop(id, { graceMs: interrupts === 1 ? graceMs : 0 }).catch(
        (err) => stopError ??= err,
      ),
    );
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    try {
      for await (
        const chunk of ctx.conn.logs({ id, follow: true, offset: 0 })
      ) {
        await ctx.out.bytes(chunk);
      }
    } catch (err) {
      // Nobody reads our output any more: the job has no one to run for.
      if (isBrokenPipe(err)) await ctx.conn.stop(id, { graceMs });
      throw err;
    }
    await Promise.all(stops);
    if (stopError) throw stopError;
    if (interrupts > 0) return 130;
    const job = await ctx.conn.status(id);
    if (job.state === JobState.JOB_STATE_RUNNING) {
      throw new CliError(
        `The output of job ${id} ended while it still runs: follow it with "telejob logs -f ${id}"`,
      );
    }
    return exitCodeOf(job);
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    await Promise.all(stops);
  }
}

/** `telejob run`. */
export const run: Command = {
  name: "run",
  spec: {
    name: "telejob run",
    usage: "[flags] [--] COMMAND [ARG...]",
    summary:
      "Start COMMAND as a job, stream its output, and exit with its exit code (128+n when signal n ended it). Ctrl-C stops the job (a second Ctrl-C kills it at once) and exits 130.",
    flags: [...JOB_FLAGS, {
      name: "grace",
      type: "string",
      value: "DURATION",
      default: "10s",
      description: "Time the job gets between SIGTERM and SIGKILL on Ctrl-C",
    }],
    stopAtPositional: true,
    positionals: { min: 1, name: "command to run" },
  },
  validate(args): void {
    startRequest(args);
    parseDuration("--grace", args.string("grace")!);
  },
  run: runJob,
};
