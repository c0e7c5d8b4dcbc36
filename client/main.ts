/**
 * `telejob`, the command-line client of telejob-server.
 *
 * ```sh
 * export TELEJOB_ADDRESS=localhost:8443
 * export TELEJOB_CLIENT_CERT=certs/client1.crt TELEJOB_CLIENT_KEY=certs/client1.key
 * export TELEJOB_SERVER_CA_CERT=certs/server-ca.crt
 * telejob start sleep 100      # prints the job id
 * telejob status 1             # the seed's table
 * telejob logs -f 1            # raw output, following
 * telejob run -- make test     # foreground: streams, exits with the job's code
 * ```
 *
 * Exit codes: 0 success, 1 failure (one line on stderr says what to do),
 * 2 usage error; `run` exits with the job's code (128+n for signal n).
 * @module
 */
import { constants } from "node:os";
import {
  type CommandSpec,
  type FlagSpec,
  helpText,
  parseCommand,
  type ParsedArgs,
  UsageError,
} from "../common/args.ts";
import {
  CliError,
  connect,
  type Connection,
  describeError,
} from "./connection.ts";
import { type Job, JobState } from "../proto/gen/telejob/v1/telejob.ts";
import { jobJson, jobTable } from "./table.ts";
import { parseTimeFormat } from "./time_format.ts";
import { versionMismatch, versionText } from "../version/mod.ts";
import {
  parseCount,
  parseCpu,
  parseDuration,
  parseSize,
  ValueError,
} from "../common/units.ts";

/** Where the CLI writes, and how it reads its environment (for tests). */
export interface CliIo {
  /** Job output and results; default `Deno.stdout`. */
  stdout?: { write(p: Uint8Array): Promise<number> };
  /** Error lines and help on failure; default `Deno.stderr`. */
  stderr?: { write(p: Uint8Array): Promise<number> };
  /** Environment lookup; default `Deno.env.get`. */
  env?: (name: string) => string | undefined;
}

const GLOBAL = "Global flags (before or after the command)";

const GLOBAL_FLAGS: FlagSpec[] = [
  {
    name: "address",
    type: "string",
    env: "TELEJOB_ADDRESS",
    default: "localhost:8443",
    value: "HOST:PORT",
    description: "Address of telejob-server",
    group: GLOBAL,
  },
  {
    name: "client-cert",
    type: "string",
    env: "TELEJOB_CLIENT_CERT",
    value: "FILE",
    description: "Client certificate (PEM); its CN is your user name",
    group: GLOBAL,
  },
  {
    name: "client-key",
    type: "string",
    env: "TELEJOB_CLIENT_KEY",
    value: "FILE",
    description: "Private key of the client certificate (PEM)",
    group: GLOBAL,
  },
  {
    name: "server-ca-cert",
    type: "string",
    env: "TELEJOB_SERVER_CA_CERT",
    value: "FILE",
    description:
      "CA of the server's certificate (PEM); the system trust store when unset",
    group: GLOBAL,
  },
  {
    name: "time-format",
    type: "string",
    env: "TELEJOB_TIME_FORMAT",
    default: "RFC3339",
    value: "LAYOUT",
    description:
      "Go time layout for STARTED and STOPPED, like 15:04:05, or a name like DateTime or Kitchen",
    group: GLOBAL,
  },
  {
    name: "output",
    short: "o",
    type: "string",
    default: "table",
    value: "table|wide|json",
    description: "Output format of start, stop, status and list",
    group: GLOBAL,
  },
];

const JOB_FLAGS: FlagSpec[] = [
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

const TABLE_NOTES =
  `An OWNER column appears when the table shows other users' jobs (admins).
STATE is running, or for an ended job: stopped (by a user), exited, or lost
(it was running when an earlier server process died). EXIT is the exit code,
the name of the signal that ended it, oom (killed by the out-of-memory
killer), stopped (by a user), or output-limit (its output reached the cap).
--output wide adds USER and UID: the server account the job runs as.
Times are local; set the layout with --time-format.`;

interface Command {
  spec: CommandSpec;
  run(ctx: Context): Promise<number>;
}

interface Context {
  args: ParsedArgs;
  conn: Connection;
  out: Output;
  layout: string;
  json: boolean;
  /** `--output wide`: the table plus USER and UID. */
  wide: boolean;
}

/** Thrown when stdout is closed (`telejob logs 1 | head`): end quietly. */
class BrokenPipe extends Error {}

class Output {
  readonly #stdout: NonNullable<CliIo["stdout"]>;
  readonly #stderr: NonNullable<CliIo["stderr"]>;
  readonly #encoder = new TextEncoder();

  constructor(io: CliIo) {
    this.#stdout = io.stdout ?? Deno.stdout;
    this.#stderr = io.stderr ?? Deno.stderr;
  }

  async bytes(data: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < data.length;) {
        off += await this.#stdout.write(data.subarray(off));
      }
    } catch (err) {
      if (
        err instanceof Deno.errors.BrokenPipe ||
        (err as { code?: string })?.code === "EPIPE"
      ) {
        throw new BrokenPipe();
      }
      throw err;
    }
  }

  text(text: string): Promise<void> {
    return this.bytes(this.#encoder.encode(text));
  }

  json(value: unknown): Promise<void> {
    return this.text(JSON.stringify(value, null, 2) + "\n");
  }

  async error(line: string): Promise<void> {
    try {
      await this.#stderr.write(this.#encoder.encode(line.trimEnd() + "\n"));
    } catch {
      // Nowhere left to report to.
    }
  }
}

function command(
  name: string,
  spec: Omit<CommandSpec, "name" | "flags"> & { flags?: FlagSpec[] },
  run: (ctx: Context) => Promise<number>,
): [string, Command] {
  return [name, {
    spec: {
      ...spec,
      name: `telejob ${name}`,
      flags: [...(spec.flags ?? []), ...GLOBAL_FLAGS],
    },
    run,
  }];
}

function startRequest(args: ParsedArgs) {
  const [cmd, ...rest] = args.positionals;
  const env = args.strings("env");
  for (const entry of env) {
    const eq = entry.indexOf("=");
    if (eq <= 0) {
      throw new ValueError(
        `Invalid --env ${JSON.stringify(entry)}: use KEY=VALUE`,
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

async function printJobs(ctx: Context, jobs: Job[], single: boolean) {
  if (ctx.json) {
    await ctx.out.json(single ? jobJson(jobs[0]) : jobs.map(jobJson));
  } else {
    // Only an admin sees other users' jobs; they get an OWNER column.
    const owner = jobs.some((job) => job.owner !== ctx.conn.user);
    await ctx.out.text(
      jobTable(jobs, { layout: ctx.layout, owner, wide: ctx.wide }),
    );
  }
}

const COMMANDS = new Map<string, Command>([
  command("start", {
    usage: "[flags] [--] COMMAND [ARG...]",
    summary:
      "Start COMMAND as a job on the server and print its id. Flags end at COMMAND, so its own flags need no --.",
    flags: JOB_FLAGS,
    stopAtPositional: true,
    positionals: { min: 1, name: "command to run" },
  }, async (ctx) => {
    const id = await ctx.conn.start(startRequest(ctx.args));
    await (ctx.json ? ctx.out.json({ id }) : ctx.out.text(id + "\n"));
    return 0;
  }),
  command("run", {
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
  }, runJob),
  command("stop", {
    usage: "[flags] ID",
    summary:
      "Stop a job: SIGTERM to all its processes, SIGKILL to what is left after the grace period. Stopping an ended job is not an error.",
    flags: [{
      name: "grace",
      type: "string",
      value: "DURATION",
      default: "10s",
      description: "Time between SIGTERM and SIGKILL, like 10s, 500ms or 0",
    }],
    positionals: { min: 1, max: 1, name: "job ID" },
  }, async (ctx) => {
    const id = ctx.args.positionals[0];
    const graceMs = parseDuration("--grace", ctx.args.string("grace")!);
    const job = await ctx.conn.stop(id, { graceMs });
    if (ctx.json && job) await ctx.out.json(jobJson(job));
    return 0;
  }),
  command("status", {
    usage: "[flags] ID",
    summary: "Show a job as a table (or JSON).",
    details: TABLE_NOTES,
    positionals: { min: 1, max: 1, name: "job ID" },
  }, async (ctx) => {
    await printJobs(
      ctx,
      [await ctx.conn.status(ctx.args.positionals[0])],
      true,
    );
    return 0;
  }),
  command("list", {
    usage: "[flags]",
    summary: "Show all your jobs (an admin sees everyone's), oldest first.",
    details: TABLE_NOTES +
      "\nLong argument lists are cut (…) unless --wide (or --output wide) is given.",
    flags: [{
      name: "wide",
      type: "boolean",
      description:
        "Show everything: every argument in full, USER and UID (same as --output wide; --output json always has it all)",
    }],
    positionals: { max: 0, name: "argument" },
  }, async (ctx) => {
    // One "wide" for list, as in kubectl: every argument and the account.
    if (ctx.args.boolean("wide")) ctx.wide = true;
    const jobs = await ctx.conn.list({ full: ctx.json || ctx.wide });
    jobs.sort((a, b) =>
      Number(a.id) - Number(b.id) || a.id.localeCompare(b.id)
    );
    await printJobs(ctx, jobs, false);
    return 0;
  }),
  command("logs", {
    usage: "[flags] ID",
    summary:
      "Write a job's output (stdout and stderr as the job interleaved them) to stdout, byte for byte.",
    flags: [{
      name: "follow",
      short: "f",
      type: "boolean",
      description: "Keep writing new output until the job has ended",
    }, {
      name: "tail",
      short: "n",
      type: "string",
      value: "BYTES",
      description: "Start this many bytes before the end",
    }],
    positionals: { min: 1, max: 1, name: "job ID" },
  }, async (ctx) => {
    const tail = ctx.args.string("tail");
    const stream = ctx.conn.logs({
      id: ctx.args.positionals[0],
      follow: ctx.args.boolean("follow"),
      offset: 0,
      tail: tail === undefined ? undefined : parseCount("--tail", tail),
    });
    for await (const chunk of stream) await ctx.out.bytes(chunk);
    return 0;
  }),
]);

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
      if (err instanceof BrokenPipe) await ctx.conn.stop(id, { graceMs });
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

const TOP: CommandSpec = {
  name: "telejob",
  usage: "[global flags] COMMAND [flags] [ARGS]",
  summary:
    "Run and manage Linux jobs on a telejob-server over mutual TLS. The server knows you by your client certificate's common name.",
  flags: [...GLOBAL_FLAGS, {
    name: "version",
    type: "boolean",
    description: "Print the version, the commit and the Deno version",
  }],
  stopAtPositional: true,
  details: `Commands:
${
    [...COMMANDS].map(([name, c]) =>
      `  ${name.padEnd(8)}${c.spec.summary.split(/(?<=\.) /)[0]}`
    ).join("\n")
  }

Examples:
  telejob start sleep 100
  telejob status 1
  telejob logs -f 1
  telejob run -- make -j2 test
  telejob --output json list

Run "telejob COMMAND --help" for a command's flags.`,
};

function requireFlag(
  args: ParsedArgs,
  name: string,
  env: string,
  what: string,
) {
  const v = args.string(name);
  if (v === undefined) {
    throw new UsageError(
      `Missing ${what}: pass --${name} FILE or set $${env}`,
    );
  }
  return v;
}

/**
 * Runs `telejob` with `args` (without the program name) and returns the
 * exit code: 0 on success, 1 on failure, 2 on a usage error, or the job's
 * code for `run`. The connection is closed before it returns.
 */
export async function cliMain(args: string[], io: CliIo = {}): Promise<number> {
  const out = new Output(io);
  const env = io.env ?? ((name: string) => Deno.env.get(name));
  let top: ParsedArgs;
  let cmd: Command | undefined;
  let parsed: ParsedArgs;
  try {
    top = parseCommand(TOP, args, { env });
    if (top.boolean("version")) {
      await out.text(`${await versionText("telejob")}\n`);
      return 0;
    }
    const [name, ...rest] = top.positionals;
    if (name === undefined || (name === "help" && rest.length === 0)) {
      if (top.help || name === "help") {
        await out.text(helpText(TOP));
        return 0;
      }
      throw new UsageError(`Missing command: run "telejob --help"`);
    }
    if (name === "help") {
      const target = COMMANDS.get(rest[0]);
      if (!target) {
        throw new UsageError(
          `Unknown command ${JSON.stringify(rest[0])}: run "telejob --help"`,
        );
      }
      await out.text(helpText(target.spec));
      return 0;
    }
    cmd = COMMANDS.get(name);
    if (!cmd) {
      throw new UsageError(
        `Unknown command ${JSON.stringify(name)}: run "telejob --help"`,
      );
    }
    parsed = parseCommand(cmd.spec, rest, { env, initial: top.explicit });
    if (parsed.help || top.help) {
      await out.text(helpText(cmd.spec));
      return 0;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      await out.error(err.message);
      return 2;
    }
    throw err;
  }

  let conn: Connection | undefined;
  let warned: Promise<void> | undefined;
  const address = parsed.string("address")!;
  const clientCert = parsed.string("client-cert") ?? "";
  try {
    const output = parsed.string("output")!;
    if (output !== "table" && output !== "wide" && output !== "json") {
      throw new UsageError(
        `Invalid --output ${JSON.stringify(output)}: use table, wide or json`,
      );
    }
    let layout: string;
    try {
      layout = parseTimeFormat(parsed.string("time-format")!);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    requireFlag(
      parsed,
      "client-cert",
      "TELEJOB_CLIENT_CERT",
      "client certificate",
    );
    const clientKey = requireFlag(
      parsed,
      "client-key",
      "TELEJOB_CLIENT_KEY",
      "client key",
    );
    // Check the flag values before connecting, so a typo costs no round trip.
    if (cmd.spec.name === "telejob start" || cmd.spec.name === "telejob run") {
      startRequest(parsed);
    }
    const grace = cmd.spec.flags.some((f) => f.name === "grace")
      ? parsed.string("grace")
      : undefined;
    if (grace !== undefined) parseDuration("--grace", grace);
    const tail = cmd.spec.name === "telejob logs"
      ? parsed.string("tail")
      : undefined;
    if (tail !== undefined) parseCount("--tail", tail);

    conn = await connect({
      address,
      clientCert,
      clientKey,
      serverCaCert: parsed.string("server-ca-cert"),
      onServerVersion(version): void {
        const warning = versionMismatch(version, { address });
        // Written at once (a `logs -f` may run for hours), awaited below.
        if (warning) warned = out.error(warning);
      },
    });
    return await cmd.run({
      args: parsed,
      conn,
      out,
      layout,
      json: output === "json",
      wide: output === "wide",
    });
  } catch (err) {
    if (err instanceof BrokenPipe) return 0;
    if (err instanceof UsageError || err instanceof ValueError) {
      const hint = err instanceof ValueError
        ? `: run "${cmd.spec.name} --help"`
        : "";
      await out.error(err.message + hint);
      return 2;
    }
    const jobId = ["telejob status", "telejob stop", "telejob logs"].includes(
        cmd.spec.name,
      )
      ? parsed.positionals[0]
      : undefined;
    await out.error(describeError(err, { address, clientCert, jobId }));
    return 1;
  } finally {
    conn?.close();
    await warned;
  }
}

if (import.meta.main) {
  Deno.exit(await cliMain(Deno.args));
}
