import assert from "node:assert/strict";
import { join } from "node:path";
import type { CommandSpec } from "../common/args.ts";
import { parseServerArgs, SERVER_SPEC, UsageError } from "./config.ts";
import {
  keyLines,
  loadConfigFile,
  parseWithConfigFile,
} from "./config_file.ts";

const noEnv = { env: () => undefined };

async function withFile(
  text: string,
  fn: (path: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "telejob-config-" });
  try {
    const path = join(dir, "server.toml");
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function refusal(path: string, args: string[] = []): Promise<string> {
  try {
    await parseServerArgs(["--config", path, ...args], noEnv);
  } catch (error) {
    assert.ok(error instanceof UsageError, String(error));
    return error.message;
  }
  throw new Error("the config was accepted");
}

const GOOD = `# Telejob server
address = "0.0.0.0:9443"
server-cert = "/etc/telejob/pki/server.crt"
server-key = '/etc/telejob/pki/server.key'
"client-ca-cert" = "/etc/telejob/pki/client-ca.crt"
cpu-limit = 0.5
memory-limit = "512M"
pids-limit = 100
output-limit = "1G"
data-dir = "/var/lib/telejob"
admin = [
  "alice",  # the on-call admin
  "bob",
]
max-jobs-per-user = 10
`;

Deno.test("a config file sets every flag under the flag's name", async () => {
  await withFile(GOOD, async (path) => {
    const parsed = await parseServerArgs(["--config", path], noEnv);
    assert.ok("config" in parsed);
    const { config } = parsed;
    assert.deepEqual(config.address, { host: "0.0.0.0", port: 9443 });
    assert.equal(config.serverCert, "/etc/telejob/pki/server.crt");
    assert.equal(config.serverKey, "/etc/telejob/pki/server.key");
    assert.equal(config.clientCaCert, "/etc/telejob/pki/client-ca.crt");
    assert.deepEqual(config.limits, {
      cpu: 0.5,
      memoryBytes: 512 * 1024 * 1024,
      pids: 100,
    });
    assert.deepEqual(config.admins, ["alice", "bob"]);
    assert.equal(config.maxJobsPerUser, 10);
  });
});

Deno.test("flags override the file; a repeated flag replaces its list; the file beats the environment", async () => {
  await withFile(GOOD, async (path) => {
    const parsed = await parseServerArgs(
      ["--config", path, "--admin", "carol", "--max-jobs-per-user", "2"],
      { env: (name) => name === "TELEJOB_ADDRESS" ? "[::1]:1" : undefined },
    );
    assert.ok("config" in parsed);
    assert.deepEqual(parsed.config.admins, ["carol"]);
    assert.equal(parsed.config.maxJobsPerUser, 2);
    assert.deepEqual(parsed.config.address, { host: "0.0.0.0", port: 9443 });
  });
});

Deno.test("an unknown key is refused with its name and line", async () => {
  await withFile(
    `address = "localhost:1"\ndata-dir = """\nadmins = 1\n"""\nadmins = ["x"]\n`,
    async (path) => {
      assert.equal(
        await refusal(path),
        `${path}, line 5: unknown key "admins": the keys are telejob-server's flags without the dashes, such as address; run "telejob-server --help"`,
      );
    },
  );
  await withFile(`\n\nserver_cert = "x"\n`, async (path) => {
    assert.equal(
      await refusal(path),
      `${path}, line 3: unknown key "server_cert": did you mean server-cert?`,
    );
  });
  await withFile(`[tls]\nserver-cert = "x"\n`, async (path) => {
    assert.match(await refusal(path), /, line 1: unknown key "tls"/);
  });
  await withFile(`config = "other.toml"\n`, async (path) => {
    assert.match(await refusal(path), /line 1: unknown key "config": a config/);
  });
});

Deno.test("a value of the wrong kind is refused with its key and line", async () => {
  const cases: [string, RegExp][] = [
    [
      `admin = "alice"`,
      /line 2: bad value for admin: expected a list of strings, like admin = \["CN"\], got string "alice"/,
    ],
    [`admin = [1.5, true]`, /line 2: bad value for admin: expected a list/],
    [
      `data-dir = ["a"]`,
      /line 2: bad value for data-dir: expected a string, like data-dir = "DIR", got a list/,
    ],
    [`data-dir = 1979-05-27`, /line 2: bad value for data-dir: .*got a date/],
    [
      `pids-limit = true`,
      /line 2: bad value for pids-limit: .*got boolean true/,
    ],
  ];
  for (const [line, expected] of cases) {
    await withFile(`# header\n${line}\n`, async (path) => {
      assert.match(await refusal(path), expected, line);
    });
  }
});

Deno.test("a value its flag's own check refuses names the file and line", async () => {
  await withFile(
    `server-cert = "s"\nserver-key = "k"\nclient-ca-cert = "c"\noutput-limit = "lots"\n`,
    async (path) => {
      assert.equal(
        await refusal(path),
        `${path}, line 4: Invalid --output-limit "lots": expected a positive size in bytes or with a unit (K, M, G, T), like 512M`,
      );
      // Overridden on the command line, the file's value is not checked.
      const parsed = await parseServerArgs(
        ["--config", path, "--output-limit", "2G"],
        noEnv,
      );
      assert.ok("config" in parsed);
      // A bad value on the command line is the command line's.
      assert.match(
        await refusal(path, ["--output-limit", "x"]),
        /^Invalid --output-limit "x"/,
      );
    },
  );
  await withFile(`cpu-limit = -1\n`, async (path) => {
    assert.match(
      await refusal(path, [
        "--server-cert",
        "s",
        "--server-key",
        "k",
        "--client-ca-cert",
        "c",
      ]),
      /, line 1: Invalid --cpu-limit "-1"/,
    );
  });
});

Deno.test("bad TOML and a missing file are refused with where and why", async () => {
  await withFile(`address = "a"\nadmin = [\n`, async (path) => {
    assert.match(await refusal(path), /, line \d: not valid TOML: /);
  });
  await withFile(`a = 1\na = 2\n`, async (path) => {
    assert.match(await refusal(path), /, line 2: not valid TOML: /);
  });
  assert.match(
    await refusal("/nonexistent/telejob.toml"),
    /^Cannot read the config file \/nonexistent\/telejob\.toml: no such file/,
  );
});

Deno.test("every flag of telejob-server is a config key, whoever adds it", async () => {
  // Built from the spec, so flags added later are covered without edits.
  const lines = SERVER_SPEC.flags.filter((f) => f.name !== "config").map(
    (f) =>
      `${f.name} = ${
        f.type === "boolean" ? "true" : f.multiple ? '["x"]' : '"x"'
      }`,
  );
  await withFile(lines.join("\n") + "\n", async (path) => {
    const file = await loadConfigFile(path, SERVER_SPEC);
    for (
      const [i, flag] of SERVER_SPEC.flags.filter((f) => f.name !== "config")
        .entries()
    ) {
      assert.ok(flag.name in file.values, flag.name);
      assert.equal(file.lines.get(flag.name), i + 1);
    }
  });
});

Deno.test("parseWithConfigFile works for any spec: switches and lists", async () => {
  const spec: CommandSpec = {
    name: "demo",
    usage: "",
    summary: "",
    flags: [
      { name: "config", type: "string", description: "" },
      { name: "verbose", type: "boolean", description: "" },
      { name: "tag", type: "string", multiple: true, description: "" },
    ],
  };
  await withFile(`verbose = true\ntag = ["a", 2]\n`, async (path) => {
    const { parsed } = await parseWithConfigFile(spec, ["--config", path]);
    assert.equal(parsed.boolean("verbose"), true);
    assert.deepEqual(parsed.strings("tag"), ["a", "2"]);
  });
  await withFile(`verbose = false\n`, async (path) => {
    const { parsed } = await parseWithConfigFile(spec, [
      "--config",
      path,
      "--verbose",
    ]);
    assert.equal(parsed.boolean("verbose"), true);
  });
  await withFile(`verbose = "yes"\n`, async (path) => {
    await assert.rejects(
      parseWithConfigFile(spec, ["--config", path]),
      /line 1: bad value for verbose: expected true or false/,
    );
  });
});

Deno.test("keyLines finds top-level keys, not ones inside strings or lists", () => {
  const text = [
    'a = "x # not a comment [" # c',
    "b = '''",
    "c = 1",
    "'''",
    "d = [",
    '  "e = 1",',
    "  { f = 1 },",
    "]",
    '"g" = 1',
    "[h]",
    'i = """one line"""',
  ].join("\n");
  assert.deepEqual([...keyLines(text)], [
    ["a", 1],
    ["b", 2],
    ["d", 5],
    ["g", 9],
    ["h", 10],
    ["i", 11],
  ]);
});
