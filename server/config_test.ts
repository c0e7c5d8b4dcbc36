import assert from "node:assert/strict";
import {
  asUsageError,
  DEFAULT_ADDRESS,
  DEFAULT_DATA_DIR,
  parseAddress,
  parseOutputLimit,
  parseServerArgs,
  type ServerConfig,
  UsageError,
} from "./config.ts";

const TLS = [
  "--server-cert",
  "s.crt",
  "--server-key",
  "s.key",
  "--client-ca-cert",
  "ca.crt",
];
const noEnv = { env: () => undefined };

async function config(
  args: string[],
  env: Record<string, string> = {},
): Promise<ServerConfig> {
  const parsed = await parseServerArgs(args, { env: (name) => env[name] });
  assert.ok("config" in parsed);
  return parsed.config;
}

Deno.test("parseAddress takes host:port and [v6]:port", () => {
  assert.deepEqual(parseAddress("localhost:8443"), {
    host: "localhost",
    port: 8443,
  });
  assert.deepEqual(parseAddress("127.0.0.1:0"), { host: "127.0.0.1", port: 0 });
  assert.deepEqual(parseAddress("[::1]:9000"), { host: "::1", port: 9000 });
  for (
    const bad of ["localhost", ":8443", "host:99999", "host:-1", "::1:80", ""]
  ) {
    assert.throws(() => parseAddress(bad), UsageError, bad);
  }
});

Deno.test("parseOutputLimit takes bytes or units", () => {
  assert.equal(parseOutputLimit("100"), 100);
  assert.equal(parseOutputLimit("512M"), 512 * 1024 ** 2);
  assert.equal(parseOutputLimit("2g"), 2 * 1024 ** 3);
  for (const bad of ["0", "-1", "1Q", "lots"]) {
    assert.throws(() => parseOutputLimit(bad), /--output-limit/);
  }
});

Deno.test("parseServerArgs: defaults, env and flags", async () => {
  const defaults = await config(TLS);
  assert.deepEqual(defaults.address, parseAddress(DEFAULT_ADDRESS));
  assert.equal(defaults.dataDir, DEFAULT_DATA_DIR);
  assert.equal(defaults.outputLimitBytes, 1024 ** 3);
  assert.deepEqual(defaults.admins, []);
  assert.deepEqual(defaults.limits, {});
  assert.equal(defaults.maxJobsPerUser, undefined);

  const fromEnv = await config(TLS, { TELEJOB_ADDRESS: "0.0.0.0:9443" });
  assert.deepEqual(fromEnv.address, { host: "0.0.0.0", port: 9443 });
  const flagWins = await config([...TLS, "--address", "127.0.0.1:1"], {
    TELEJOB_ADDRESS: "0.0.0.0:9443",
  });
  assert.equal(flagWins.address.port, 1);

  const full = await config([
    ...TLS,
    "--admin",
    "root",
    "--admin",
    "ops",
    "--max-jobs-per-user",
    "5",
    "--cpu-limit",
    "0.5",
    "--memory-limit",
    "2000",
    "--pids-limit",
    "64",
    "--output-limit",
    "1M",
    "--cgroup-parent",
    "jobs",
  ]);
  assert.deepEqual(full.admins, ["root", "ops"]);
  assert.equal(full.maxJobsPerUser, 5);
  assert.deepEqual(full.limits, {
    cpu: 0.5,
    memoryBytes: 2000 * 1024,
    pids: 64,
  });
  assert.equal(full.outputLimitBytes, 1024 ** 2);
  assert.equal(full.cgroupParent, "jobs");
});

Deno.test("parseServerArgs: help, and usage errors that name the flag", async () => {
  const help = await parseServerArgs(["--help"], noEnv);
  assert.ok("help" in help && help.help.includes("--client-ca-cert"));
  const cases: [string[], RegExp][] = [
    [["--server-cert", "a", "--server-key", "b"], /--client-ca-cert/],
    [[...TLS, "--nope"], /--nope/],
    [[...TLS, "--cpu-limit", "x"], /--cpu-limit/],
    [[...TLS, "--io-limit", "7:0 nope=1"], /--io-limit/],
    [[...TLS, "--run-as", "nope"], /--run-as/],
    [[...TLS, "--uid-range", "9-1"], /--uid-range/],
    [[...TLS, "--max-jobs-per-user", "0"], /--max-jobs-per-user/],
    [[...TLS, "--data-dir", ""], /--data-dir/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(
      parseServerArgs(args, noEnv),
      (e) => e instanceof UsageError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("resource budget flags: defaults, values, and errors naming the flag", async () => {
  const { DEFAULT_BUDGETS } = await import("./budgets.ts");
  assert.deepEqual((await config(TLS)).budgets, DEFAULT_BUDGETS);
  const set = await config([
    ...TLS,
    "--max-connections",
    "10",
    "--max-connections-per-address",
    "2",
    "--max-streams-per-connection",
    "5",
    "--max-calls-per-user",
    "3",
    "--handshake-timeout",
    "500ms",
    "--fd-reserve",
    "0",
  ]);
  assert.deepEqual(set.budgets, {
    maxConnections: 10,
    maxConnectionsPerAddress: 2,
    maxStreamsPerConnection: 5,
    maxCallsPerUser: 3,
    handshakeTimeoutMs: 500,
    fdReserve: 0,
  });
  for (
    const [flag, value] of [
      ["--max-connections", "0"],
      ["--max-calls-per-user", "x"],
      ["--handshake-timeout", "forever"],
      ["--fd-reserve", "-1"],
    ]
  ) {
    await assert.rejects(
      parseServerArgs([...TLS, flag, value], noEnv),
      (e) => e instanceof UsageError && e.message.includes(flag),
    );
  }
});

Deno.test("asUsageError makes a parser's plain Error a usage error and lets bugs through", () => {
  const usage = asUsageError(new Error('Invalid --cpu-limit "x": bad'));
  assert.ok(usage instanceof UsageError);
  assert.equal(usage.message, 'Invalid --cpu-limit "x": bad');
  // A bug (TypeError), a host failure (Deno.errors.*) or a non-Error thrown
  // keeps its identity and stack: it must not exit 2 as a usage mistake.
  for (
    const bug of [
      new TypeError("Cannot read properties of undefined"),
      new RangeError("Maximum call stack size exceeded"),
      new Deno.errors.PermissionDenied("open /dev/sda"),
      "a string",
    ]
  ) {
    assert.equal(asUsageError(bug), bug);
  }
});
