/**
 * `telejob start`: start a job and print its id. Also owns the job flags
 * and the StartRequest that `telejob run` shares.
 * @module
 */
import type { FlagSpec, ParsedArgs } from "../../common/args.ts";
import {
  parseCount,
  parseCpu,
  parseSize,
  ValueError,
} from "../../common/units.ts";
import { JobError } from "../../common/errors.ts";
import { parseEnvEntry } from "../../common/validate.ts";
import type { StartRequest } from "../../proto/gen/telejob/v1/telejob.ts";
import type { Command } from "./command.ts";

/** The flags that shape a job: environment, directory, account, limits. */
export const JOB_FLAGS: FlagSpec[] = [
  {
    name: "env",
    short: "e",
    type: "string",
    multiple: true,
    value: "KEY=VALUE",
    description: "Add to the job's environment",
  },
  {
    name: "cwd",
    type: "string",
    value: "DIR",
    description:
      "Working directory on the server (absolute; default the account's home)",
  },
  {
    name: "user",
    type: "string",
    value: "LOGIN",
    description:
      "Run as this server account, if its --run-as policy allows you (default: your own unprivileged identity)",
  },
  {
    name: "cpu",
    type: "string",
    value: "CPUS",
    description: "CPU limit in cores, like 0.5 (at most the server's)",
  },
  {
    name: "memory",
    type: "string",
    value: "SIZE",
    description: "Memory limit, like 512M or 2G, or a number of KiB",
  },
  {
    name: "pids",
    type: "string",
    value: "N",
    description: "Limit on the job's processes and threads",
  },
];

/**
 * The StartRequest of `start` and `run` from their command line.
 * @throws {ValueError} naming the flag whose value is wrong.
 */
export function startRequest(args: ParsedArgs): StartRequest {
  const [cmd, ...rest] = args.positionals;
  const env = args.strings("env");
  for (const entry of env) {
    // The server's own rule, so the CLI never passes what the server refuses
    // nor refuses what it takes; the message names the flag, as the others do.
    try {
      parseEnvEntry(entry, { field: "env", what: "--env" });
    } catch (err) {
      if (!(err instanceof JobError)) throw err;
      throw new ValueError(
        `Invalid --env ${
          JSON.stringify(entry)
        }: use KEY=VALUE, with a key of letters, digits and underscores not starting with a digit`,
      );
    }
  }
  const cpu = args.string("cpu");
  const memory = args.string("memory");
  const pids = args.string("pids");
  return {
    command: cmd,
    args: rest,
    env,
    cwd: args.string("cwd") ?? "",
    user: args.string("user") ?? "",
    limits: {
      cpu: cpu === undefined ? 0 : parseCpu("--cpu", cpu),
      memoryBytes: memory === undefined ? 0 : parseSize("--memory", memory),
      pids: pids === undefined ? 0 : parseCount("--pids", pids, { min: 1 }),
      io: [],
    },
  };
}

/** `telejob start`. */
export const start: Command = {
  name: "start",
  spec: {
    name: "telejob start",
    usage: "[flags] [--] COMMAND [ARG...]",
    summary:
      "Start COMMAND as a job on the server and print its id. Flags end at COMMAND, so its own flags need no --.",
    flags: JOB_FLAGS,
    stopAtPositional: true,
    positionals: { min: 1, name: "command to run" },
  },
  validate(args): void {
    startRequest(args);
  },
  async run(ctx): Promise<number> {
    const id = await ctx.conn.start(startRequest(ctx.args));
    await (ctx.json ? ctx.out.json({ id }) : ctx.out.text(id + "\n"));
    return 0;
  },
};
