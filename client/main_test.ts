// The CLI's argument handling, in process. Everything that talks to a
// server is tested end to end in tests/cli_test.ts.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cliMain } from "./main.ts";

const TESTDATA = fileURLToPath(new URL("../tests/testdata/", import.meta.url));

class Capture {
  chunks: Uint8Array[] = [];
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p.slice());
    return Promise.resolve(p.length);
  }
  get text(): string {
    return this.chunks.map((c) => new TextDecoder().decode(c)).join("");
  }
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await cliMain(args, {
    stdout,
    stderr,
    env: (name) => env[name],
  });
  return { code, out: stdout.text, err: stderr.text };
}

Deno.test("--help: top level, per command, and `help COMMAND`", async () => {
  const top = await cli(["--help"]);
  assert.equal(top.code, 0);
  assert.equal(top.err, "");
  assert.match(top.out, /^Usage: telejob \[global flags\] COMMAND/);
  for (const cmd of ["start", "run", "stop", "status", "list", "logs"]) {
    assert.match(top.out, new RegExp(`^  ${cmd} +\\S`, "m"), cmd);
    for (const args of [[cmd, "--help"], [cmd, "-h"], ["help", cmd]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, args.join(" "));
      assert.match(r.out, new RegExp(`^Usage: telejob ${cmd} `));
      assert.match(
        r.out,
        /--client-cert FILE +Client certificate.*\$TELEJOB_CLIENT_CERT/,
      );
    }
  }
  const status = await cli(["status", "--help"]);
  assert.match(status.out, /STATE is running, or for an ended job: stopped/);
  // Global flags may come first; the command's help still shows.
  assert.match((await cli(["--address", "x:1", "logs", "-h"])).out, /--follow/);
});

Deno.test("usage errors: one line, exit 2, nothing on stdout", async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [[], {}, /^Missing command: run "telejob --help"$/],
    [["frob"], {}, /^Unknown command "frob": run "telejob --help"$/],
    [["help", "frob"], {}, /^Unknown command "frob"/],
    [
      ["--nope", "list"],
      {},
      /^Unknown flag --nope for "telejob": run "telejob --help"$/,
    ],
    [
      ["list", "--nope"],
      {},
      /^Unknown flag --nope for "telejob list": run "telejob list --help"$/,
    ],
    [["list", "extra"], {}, /^Unexpected argument "extra" for "telejob list"/],
    [["status"], {}, /^Missing job ID for "telejob status"/],
    [["start"], {}, /^Missing command to run for "telejob start"/],
    [["logs", "1", "--tail"], {}, /^Flag --tail needs a value/],
    [
      ["list"],
      {},
      /^Missing client certificate: pass --client-cert FILE or set \$TELEJOB_CLIENT_CERT$/,
    ],
    [
      ["list", "--client-cert", "c"],
      {},
      /^Missing client key: pass --client-key FILE/,
    ],
    [
      ["list", "-o", "yaml"],
      {},
      /^Invalid --output "yaml": use table, wide or json$/,
    ],
    [
      ["list"],
      { TELEJOB_TIME_FORMAT: "%H:%M" },
      /^Invalid time format "%H:%M": write the reference time/,
    ],
  ];
  for (const [args, env, pattern] of cases) {
    const r = await cli(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.equal(r.out, "");
    assert.equal(r.err.trimEnd().split("\n").length, 1, r.err);
    assert.match(r.err.trimEnd(), pattern, args.join(" "));
  }
});

Deno.test("flag values are checked before connecting", async () => {
  const env = {
    TELEJOB_CLIENT_CERT: join(TESTDATA, "client1.crt"),
    TELEJOB_CLIENT_KEY: join(TESTDATA, "client1.key"),
    // Nothing listens here; a usage error must come before any attempt.
    TELEJOB_ADDRESS: "127.0.0.1:1",
    // connect() fails on this at once (exit 1), and grpc-js connects only at
    // the first call: without it a check left to the handler would pass too.
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "no-such-ca.crt"),
  };
  const cases: [string[], RegExp][] = [
    [
      ["start", "--memory", "12Q", "x"],
      /^Invalid --memory "12Q": .*: run "telejob start --help"$/,
    ],
    [["start", "--cpu", "-1", "x"], /^Flag --cpu needs a value/],
    [["start", "--cpu", "0", "x"], /^Invalid --cpu "0"/],
    [["run", "--pids", "0", "x"], /^Invalid --pids "0"/],
    [
      ["start", "--env", "NOEQUALS", "x"],
      /^Invalid --env "NOEQUALS": use KEY=VALUE/,
    ],
    [["stop", "--grace", "soon", "1"], /^Invalid --grace "soon"/],
    [["logs", "--tail", "x", "1"], /^Invalid --tail "x"/],
  ];
  for (const [args, pattern] of cases) {
    const r = await cli(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err.trimEnd(), pattern, args.join(" "));
  }
});

Deno.test("an unreachable server is one line and exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const r = await cli(["list"], {
    TELEJOB_ADDRESS: `127.0.0.1:${port}`,
    TELEJOB_CLIENT_CERT: join(TESTDATA, "client1.crt"),
    TELEJOB_CLIENT_KEY: join(TESTDATA, "client1.key"),
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "server-ca.crt"),
  });
  assert.equal(r.code, 1);
  assert.equal(
    r.err,
    `Cannot reach telejob-server at 127.0.0.1:${port} (connection refused): check --address or $TELEJOB_ADDRESS and that the server is running\n`,
  );
});
