/**
 * telejob-server's command line, as a person meets it: `--help`, bad flags
 * (exit 2, one line naming the flag) and bad TLS files (exit 1, one line
 * saying what is wrong), all from the real program.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { join } from "node:path";
import { REPO, TESTDATA } from "./server_harness.ts";

const SERVER = join(REPO, "server", "main.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[]): Promise<Run> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SERVER, ...args],
    stdin: "null",
    env: { TELEJOB_ADDRESS: "" },
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: output.code,
    stdout: decode(output.stdout),
    stderr: decode(output.stderr),
  };
}

function tlsFlags(overrides: Record<string, string> = {}): string[] {
  const files = {
    "server-cert": join(TESTDATA, "server.crt"),
    "server-key": join(TESTDATA, "server.key"),
    "client-ca-cert": join(TESTDATA, "client-ca.crt"),
    ...overrides,
  };
  return Object.entries(files).flatMap(([flag, path]) => [`--${flag}`, path]);
}

/** One line on stderr, nothing on stdout. */
function oneLine(result: Run): string {
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  return lines[0];
}

Deno.test("--help lists every flag and exits 0", async () => {
  const result = await run(["--help"]);
  assert.equal(result.code, 0);
  for (
    const flag of [
      "--address",
      "$TELEJOB_ADDRESS",
      "--server-cert",
      "--server-key",
      "--client-ca-cert",
      "--cpu-limit",
      "--memory-limit",
      "--io-limit",
      "--pids-limit",
      "--output-limit",
      "--data-dir",
      "--admin",
      "--max-jobs-per-user",
      "--cgroup-parent",
      "--help",
    ]
  ) {
    assert.ok(result.stdout.includes(flag), `--help does not mention ${flag}`);
  }
});

Deno.test("bad flags: one line naming the flag, exit 2", async () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown flag", [...tlsFlags(), "--bogus"], /--bogus/],
    [
      "missing client CA",
      tlsFlags({ "client-ca-cert": "" }),
      /--client-ca-cert/,
    ],
    ["bad address", [...tlsFlags(), "--address", "nope"], /--address/],
    ["bad port", [...tlsFlags(), "--address", "localhost:70000"], /--address/],
    ["bad CPU limit", [...tlsFlags(), "--cpu-limit", "-1"], /--cpu-limit/],
    [
      "absurd CPU limit",
      [...tlsFlags(), "--cpu-limit", "100000"],
      /--cpu-limit/,
    ],
    [
      "bad memory limit",
      [...tlsFlags(), "--memory-limit", "lots"],
      /--memory-limit/,
    ],
    ["bad io limit", [...tlsFlags(), "--io-limit", "8:0 fast=1"], /--io-limit/],
    ["bad pids limit", [...tlsFlags(), "--pids-limit", "0"], /--pids-limit/],
    [
      "bad output limit",
      [...tlsFlags(), "--output-limit", "-5"],
      /--output-limit/,
    ],
    [
      "bad max jobs",
      [...tlsFlags(), "--max-jobs-per-user", "many"],
      /--max-jobs-per-user/,
    ],
    ["empty admin", [...tlsFlags(), "--admin", ""], /--admin/],
    ["stray argument", [...tlsFlags(), "extra"], /extra/],
  ];
  for (const [what, args, flag] of cases) {
    const result = await run(args);
    assert.equal(result.code, 2, `${what}: ${result.stderr}`);
    assert.match(oneLine(result), flag, what);
  }
});

Deno.test("bad TLS files: refused at start-up with what to do, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "telejob-server-cli-" });
  try {
    const rsa = join(dir, "rsa.key");
    const p384 = join(dir, "p384.key");
    const garbage = join(dir, "garbage.pem");
    const pem = (type: "rsa" | "ec", options: Record<string, unknown>) =>
      generateKeyPairSync(type as "rsa", {
        ...options,
        privateKeyEncoding: { type: "pkcs8", format: "pem" },
        publicKeyEncoding: { type: "spki", format: "pem" },
      } as never).privateKey as unknown as string;
    await Deno.writeTextFile(rsa, pem("rsa", { modulusLength: 2048 }));
    await Deno.writeTextFile(p384, pem("ec", { namedCurve: "secp384r1" }));
    await Deno.writeTextFile(garbage, "not a certificate\n");

    const cases: [string, Record<string, string>, RegExp][] = [
      [
        "RSA server key",
        { "server-key": rsa },
        /--server-key .*RSA key.*ECDSA P-256/,
      ],
      [
        "P-384 server key",
        { "server-key": p384 },
        /--server-key .*secp384r1.*ECDSA P-256/,
      ],
      ["key of another certificate", {
        "server-key": join(TESTDATA, "client1.key"),
      }, /does not belong to/],
      [
        "missing key file",
        { "server-key": join(dir, "none.key") },
        /Cannot read --server-key/,
      ],
      [
        "unreadable cert file",
        { "server-cert": dir },
        /Cannot read --server-cert/,
      ],
      [
        "client CA not a certificate",
        { "client-ca-cert": garbage },
        /--client-ca-cert .*no PEM certificate/,
      ],
    ];
    for (const [what, overrides, message] of cases) {
      const result = await run([
        ...tlsFlags(overrides),
        "--address",
        "127.0.0.1:0",
        "--data-dir",
        join(dir, "data"),
      ]);
      assert.equal(result.code, 1, `${what}: ${result.stderr}`);
      assert.match(oneLine(result), message, what);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
