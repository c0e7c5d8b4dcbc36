import assert from "node:assert/strict";
import {
  type CommandSpec,
  helpText,
  parseCommand,
  UsageError,
} from "./args.ts";

const noEnv = () => undefined;

const start: CommandSpec = {
  name: "telejob start",
  usage: "[flags] [--] COMMAND [ARG...]",
  summary: "Start a job.",
  stopAtPositional: true,
  positionals: { min: 1, name: "command" },
  flags: [
    {
      name: "env",
      type: "string",
      multiple: true,
      value: "K=V",
      description: "Add to the job's environment",
    },
    { name: "cwd", type: "string", value: "DIR", description: "Work dir" },
    {
      name: "address",
      type: "string",
      env: "TELEJOB_ADDRESS",
      default: "localhost:8443",
      value: "HOST:PORT",
      description: "Server address",
      group: "Global flags",
    },
  ],
};

const logs: CommandSpec = {
  name: "telejob logs",
  usage: "[flags] ID",
  summary: "Print a job's output.",
  positionals: { min: 1, max: 1, name: "job ID" },
  flags: [
    { name: "follow", short: "f", type: "boolean", description: "Follow" },
    { name: "tail", short: "n", type: "string", description: "Last N bytes" },
    { name: "verbose", type: "boolean", env: "T_VERBOSE", description: "v" },
  ],
};

function usageError(fn: () => unknown, message: string) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.equal(err.message, message);
    return true;
  });
}

Deno.test("flags stop at the first positional, so the job keeps its own", () => {
  const p = parseCommand(start, ["--cwd", "/tmp", "ls", "-la", "--cwd", "x"], {
    env: noEnv,
  });
  assert.equal(p.string("cwd"), "/tmp");
  assert.deepEqual(p.positionals, ["ls", "-la", "--cwd", "x"]);
});

Deno.test("-- ends the flags and is dropped once", () => {
  const p = parseCommand(start, ["--", "--cwd", "--", "x"], { env: noEnv });
  assert.equal(p.string("cwd"), undefined);
  assert.deepEqual(p.positionals, ["--cwd", "--", "x"]);
});

Deno.test("repeatable flags collect every value in order, = or space", () => {
  const p = parseCommand(start, ["--env", "A=1", "--env=B=2", "sh"], {
    env: noEnv,
  });
  assert.deepEqual(p.strings("env"), ["A=1", "B=2"]);
  assert.deepEqual(
    parseCommand(start, ["sh"], { env: noEnv }).strings("env"),
    [],
  );
});

Deno.test("a flag beats its env var, which beats the default", () => {
  const env = (name: string) =>
    name === "TELEJOB_ADDRESS" ? "env:1" : undefined;
  assert.equal(
    parseCommand(start, ["sh"], { env: noEnv }).string("address"),
    "localhost:8443",
  );
  assert.equal(parseCommand(start, ["sh"], { env }).string("address"), "env:1");
  const p = parseCommand(start, ["--address", "flag:2", "sh"], { env });
  assert.equal(p.string("address"), "flag:2");
  assert.deepEqual(p.explicit, { address: "flag:2" });
  // An empty env var counts as unset.
  assert.equal(
    parseCommand(start, ["sh"], { env: () => "" }).string("address"),
    "localhost:8443",
  );
});

Deno.test("boolean env vars: set means true unless 0/false/no/off", () => {
  for (const [raw, want] of [["1", true], ["yes", true], ["false", false]]) {
    const p = parseCommand(logs, ["1"], {
      env: (n) => n === "T_VERBOSE" ? raw as string : undefined,
    });
    assert.equal(p.boolean("verbose"), want, String(raw));
  }
});

Deno.test("initial values (global flags before the subcommand)", () => {
  const env = () => "env:1";
  const before = parseCommand(start, ["sh"], {
    env,
    initial: { address: "before:1" },
  });
  assert.equal(before.string("address"), "before:1");
  const after = parseCommand(start, ["--address", "after:2", "sh"], {
    env,
    initial: { address: "before:1" },
  });
  assert.equal(after.string("address"), "after:2");
});

Deno.test("without stopAtPositional, flags may follow positionals", () => {
  const p = parseCommand(logs, ["7", "-f", "--tail", "10"], { env: noEnv });
  assert.deepEqual(p.positionals, ["7"]);
  assert.equal(p.boolean("follow"), true);
  assert.equal(p.string("tail"), "10");
  const q = parseCommand(logs, ["-fn5", "7"], { env: noEnv });
  assert.equal(q.boolean("follow"), true);
  assert.equal(q.string("tail"), "5");
});

Deno.test("mistakes are UsageErrors naming the flag and the fix", () => {
  usageError(
    () => parseCommand(start, ["--foo", "sh"], { env: noEnv }),
    'Unknown flag --foo for "telejob start": run "telejob start --help"',
  );
  usageError(
    () => parseCommand(logs, ["-x", "1"], { env: noEnv }),
    'Unknown flag -x for "telejob logs": run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(logs, ["1", "--tail"], { env: noEnv }),
    'Flag --tail needs a value: run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(logs, ["--tail", "-5", "1"], { env: noEnv }),
    'Flag --tail needs a value (to pass one starting with a dash, write --tail=-5): run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(logs, ["--follow=yes", "1"], { env: noEnv }),
    'Flag --follow takes no value, got "yes": run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(logs, [], { env: noEnv }),
    'Missing job ID for "telejob logs": run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(logs, ["1", "2"], { env: noEnv }),
    'Unexpected argument "2" for "telejob logs": run "telejob logs --help"',
  );
  usageError(
    () => parseCommand(start, ["--cwd", "/"], { env: noEnv }),
    'Missing command for "telejob start": run "telejob start --help"',
  );
});

Deno.test("--help skips the positional check; unknown flags still fail", () => {
  assert.equal(parseCommand(logs, ["--help"], { env: noEnv }).help, true);
  assert.equal(parseCommand(start, ["-h"], { env: noEnv }).help, true);
  // After the command, -h belongs to the job.
  assert.equal(parseCommand(start, ["ls", "-h"], { env: noEnv }).help, false);
  assert.throws(
    () => parseCommand(logs, ["--help", "--nope"], { env: noEnv }),
    UsageError,
  );
});

Deno.test("asking for a flag the spec lacks is a programming error", () => {
  const p = parseCommand(logs, ["1"], { env: noEnv });
  assert.throws(() => p.string("nope"), /has no string flag --nope/);
  assert.throws(() => p.string("follow"), /has no string flag --follow/);
  assert.throws(() => p.strings("tail"), /has no repeatable string flag/);
});

Deno.test("helpText lists flags by group with env vars and defaults", () => {
  assert.equal(
    helpText(start),
    `Usage: telejob start [flags] [--] COMMAND [ARG...]

Start a job.

Flags:
      --env K=V            Add to the job's environment (repeatable)
      --cwd DIR            Work dir
  -h, --help               Show this help

Global flags:
      --address HOST:PORT  Server address ($TELEJOB_ADDRESS, default localhost:8443)
`,
  );
});
