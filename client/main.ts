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
import {
  type CommandSpec,
  type FlagSpec,
  helpText,
  parseCommand,
  type ParsedArgs,
} from "../common/args.ts";
import { connect, type Connection, describeError } from "./connection.ts";
import { asCliError, usageError } from "./errors.ts";
import { type CliIo, Output } from "./output.ts";
import { parseTimeFormat } from "./time_format.ts";
import { versionMismatch, versionText } from "../version/mod.ts";
import { type Command, COMMANDS as OWN_COMMANDS } from "./commands/mod.ts";

export type { CliIo } from "./output.ts";

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

/** Every command, its flags followed by the global ones. */
const COMMANDS: readonly Command[] = OWN_COMMANDS.map((cmd) => ({
  ...cmd,
  spec: { ...cmd.spec, flags: [...cmd.spec.flags, ...GLOBAL_FLAGS] },
}));

function findCommand(name: string): Command {
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    throw usageError(
      `Unknown command ${JSON.stringify(name)}: run "telejob --help"`,
    );
  }
  return cmd;
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
    COMMANDS.map((c) =>
      `  ${c.name.padEnd(8)}${c.spec.summary.split(/(?<=\.) /)[0]}`
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
): string {
  const v = args.string(name);
  if (v === undefined) {
    throw usageError(`Missing ${what}: pass --${name} FILE or set $${env}`);
  }
  return v;
}

/** What the command line asks for: help, the version, or a command. */
type Parsed =
  | { text: () => Promise<string> }
  | { cmd: Command; args: ParsedArgs };

/** Parses `args` into what to do; throws usage errors. */
function parse(
  args: string[],
  env: (name: string) => string | undefined,
): Parsed {
  const top = parseCommand(TOP, args, { env });
  if (top.boolean("version")) {
    return { text: async () => `${await versionText("telejob")}\n` };
  }
  const [name, ...rest] = top.positionals;
  if (name === undefined || (name === "help" && rest.length === 0)) {
    if (top.help || name === "help") {
      return { text: () => Promise.resolve(helpText(TOP)) };
    }
    throw usageError(`Missing command: run "telejob --help"`);
  }
  if (name === "help") {
    const target = findCommand(rest[0]);
    return { text: () => Promise.resolve(helpText(target.spec)) };
  }
  const cmd = findCommand(name);
  const parsed = parseCommand(cmd.spec, rest, { env, initial: top.explicit });
  if (parsed.help || top.help) {
    return { text: () => Promise.resolve(helpText(cmd.spec)) };
  }
  return { cmd, args: parsed };
}

/** The global settings, checked before connecting. */
interface Settings {
  layout: string;
  output: "table" | "wide" | "json";
  clientCert: string;
  clientKey: string;
}

/**
 * Checks the global flags and then the command's own values before
 * connecting, so a typo costs no round trip.
 */
function validate(cmd: Command, args: ParsedArgs): Settings {
  const output = args.string("output")!;
  if (output !== "table" && output !== "wide" && output !== "json") {
    throw usageError(
      `Invalid --output ${JSON.stringify(output)}: use table, wide or json`,
    );
  }
  let layout: string;
  try {
    layout = parseTimeFormat(args.string("time-format")!);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const clientCert = requireFlag(
    args,
    "client-cert",
    "TELEJOB_CLIENT_CERT",
    "client certificate",
  );
  const clientKey = requireFlag(
    args,
    "client-key",
    "TELEJOB_CLIENT_KEY",
    "client key",
  );
  cmd.validate?.(args);
  return { layout, output, clientCert, clientKey };
}

/**
 * Runs `telejob` with `args` (without the program name) and returns the
 * exit code: 0 on success, 1 on failure, 2 on a usage error, or the job's
 * code for `run`. The connection is closed before it returns.
 */
export async function cliMain(args: string[], io: CliIo = {}): Promise<number> {
  const out = new Output(io);
  const env = io.env ?? ((name: string) => Deno.env.get(name));
  let parsed: Parsed;
  try {
    parsed = parse(args, env);
    if ("text" in parsed) {
      await out.text(await parsed.text());
      return 0;
    }
  } catch (err) {
    const end = asCliError(err, "telejob");
    if (!end) throw err;
    if (end.message) await out.error(end.message);
    return end.exitCode;
  }

  const { cmd, args: cmdArgs } = parsed;
  let conn: Connection | undefined;
  let warned: Promise<void> | undefined;
  const address = cmdArgs.string("address")!;
  try {
    const settings = validate(cmd, cmdArgs);
    conn = await connect({
      address,
      clientCert: settings.clientCert,
      clientKey: settings.clientKey,
      serverCaCert: cmdArgs.string("server-ca-cert"),
      onServerVersion(version): void {
        const warning = versionMismatch(version, { address });
        // Written at once (a `logs -f` may run for hours), awaited below.
        if (warning) warned = out.error(warning);
      },
    });
    return await cmd.run({
      args: cmdArgs,
      conn,
      out,
      layout: settings.layout,
      json: settings.output === "json",
      wide: settings.output === "wide",
    });
  } catch (err) {
    const end = asCliError(err, cmd.spec.name);
    if (end) {
      if (end.message) await out.error(end.message);
      return end.exitCode;
    }
    await out.error(describeError(err, {
      address,
      clientCert: cmdArgs.string("client-cert") ?? "",
      jobId: cmd.jobId?.(cmdArgs),
    }));
    return 1;
  } finally {
    conn?.close();
    await warned;
  }
}

if (import.meta.main) {
  Deno.exit(await cliMain(Deno.args));
}
