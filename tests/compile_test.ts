/**
 * The compiled programs need nothing from the source tree at run time.
 *
 * `deno compile` cannot run here (its runtime, denort, is downloaded from a
 * host we cannot reach), so these tests run what it would embed instead:
 * `tools/compile.ts` stages each program's module graph, its `--include`
 * files and `deno.json` into an empty directory, and the real server and
 * CLI run from there, in a mount namespace where an empty tmpfs hides the
 * repository (`unshare -m`, as root). A file the programs read at run time
 * that the binary would not carry fails them here; the server builds its
 * health and reflection services before it listens, so a missing
 * descriptor stops it.
 *
 * The same staging checks the version: the commit baked into the entry
 * point, and the CLI's warning against a server of another major version.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { PROGRAMS, stage } from "../tools/compile.ts";
import { commit, VERSION } from "../version/mod.ts";
import { REPO, type ServerProcess, startServer } from "./server_harness.ts";

interface Staged {
  /** Temporary directory holding stage/, certs/ and cwd/. */
  root: string;
  /** The command that runs each staged program, the repository hidden. */
  run: Record<string, [string, ...string[]]>;
  certs: string;
  cwd: string;
}

async function stageAll(options: { version?: string } = {}): Promise<Staged> {
  const root = await Deno.makeTempDir({ prefix: "telejob-stage-" });
  const dir = join(root, "stage");
  const certs = join(root, "certs");
  const cwd = join(root, "cwd");
  await Deno.mkdir(certs);
  await Deno.mkdir(cwd);
  for (const name of ["server", "client-ca", "server-ca", "client1"]) {
    for (const ext of ["crt", "key"]) {
      await Deno.copyFile(
        join(REPO, "tests", "testdata", `${name}.${ext}`),
        join(certs, `${name}.${ext}`),
      );
    }
  }
  const sha = await commit();
  const run: Record<string, [string, ...string[]]> = {};
  for (const program of PROGRAMS) {
    const entry = await stage(program, {
      dir,
      commit: sha ?? "unknown",
      version: options.version,
    });
    run[program.name] = [
      "unshare",
      "--mount",
      "--",
      "sh",
      "-c",
      'mount -t tmpfs -o size=64k,mode=0755 telejob-hidden "$0" && exec "$@"',
      REPO,
      Deno.execPath(),
      "run",
      "-A",
      "--quiet",
      "--config",
      join(dir, "deno.json"),
      "--frozen",
      entry,
    ];
  }
  return { root, run, certs, cwd };
}

async function startStagedServer(staged: Staged): Promise<ServerProcess> {
  return await startServer({
    command: staged.run["telejob-server"],
    cwd: staged.cwd,
    // Later flags win over the harness's test certificates in the repository.
    args: [
      "--server-cert",
      join(staged.certs, "server.crt"),
      "--server-key",
      join(staged.certs, "server.key"),
      "--client-ca-cert",
      join(staged.certs, "client-ca.crt"),
    ],
  });
}

interface Result {
  code: number;
  out: string;
  err: string;
}

async function exec(
  [program, ...args]: string[],
  options: { cwd?: string } = {},
): Promise<Result> {
  const output = await new Deno.Command(program, {
    args,
    cwd: options.cwd,
    stdin: "null",
    env: { NO_COLOR: "1", TELEJOB_TIME_FORMAT: "15:04:05" },
  }).output();
  const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
  return {
    code: output.code,
    out: decode(output.stdout),
    err: decode(output.stderr),
  };
}

/** Runs `telejob` (`cli`: deno run arguments) against `server`. */
function telejob(
  cli: string[],
  staged: Staged,
  server: ServerProcess,
  args: string[],
): Promise<Result> {
  return exec([
    ...cli,
    "--address",
    server.address,
    "--client-cert",
    join(staged.certs, "client1.crt"),
    "--client-key",
    join(staged.certs, "client1.key"),
    "--server-ca-cert",
    join(staged.certs, "server-ca.crt"),
    ...args,
  ], { cwd: staged.cwd });
}

Deno.test("the programs run with only what the binaries embed", async (t) => {
  const staged = await stageAll();
  const cli = staged.run.telejob;
  const sha = await commit();
  try {
    await t.step(
      "--version names the release and the baked-in commit",
      async () => {
        for (const program of PROGRAMS) {
          const result = await exec(
            [...staged.run[program.name], "--version"],
            {
              cwd: staged.cwd,
            },
          );
          assert.equal(result.code, 0, result.err);
          assert.match(
            result.out,
            new RegExp(
              `^${program.name} ${
                VERSION.replaceAll(".", "\\.")
              } \\(commit ${sha}, Deno ${Deno.version.deno}, `,
            ),
          );
        }
      },
    );

    await t.step("a read of the repository is refused", async () => {
      // Proves the deny-read is in force: the same server, pointed at a
      // certificate in the repository, cannot start.
      const result = await exec([
        ...staged.run["telejob-server"],
        "--server-cert",
        join(REPO, "tests", "testdata", "server.crt"),
        "--server-key",
        join(staged.certs, "server.key"),
        "--client-ca-cert",
        join(staged.certs, "client-ca.crt"),
      ], { cwd: staged.cwd });
      assert.equal(result.code, 1);
      assert.match(result.err, /server\.crt/);
    });

    const server = await startStagedServer(staged);
    try {
      await t.step("start, status, logs, list and stop work", async () => {
        const started = await telejob(cli, staged, server, [
          "start",
          "sh",
          "-c",
          "echo hello; exec sleep 100",
        ]);
        assert.equal(started.code, 0, started.err);
        const id = started.out.trim();
        assert.match(id, /^\d+$/);
        assert.equal(started.err, "", "no version warning");

        const status = await telejob(cli, staged, server, ["status", id]);
        assert.equal(status.code, 0, status.err);
        assert.match(status.out, /^ID\s+COMMAND\s+STATE/);
        assert.match(status.out, /running/);

        const stopped = await telejob(cli, staged, server, [
          "stop",
          "--grace",
          "0",
          id,
        ]);
        assert.equal(stopped.code, 0, stopped.err);

        const logs = await telejob(cli, staged, server, ["logs", id]);
        assert.equal(logs.code, 0, logs.err);
        assert.equal(logs.out, "hello\n");

        const list = await telejob(cli, staged, server, ["list"]);
        assert.equal(list.code, 0, list.err);
        assert.match(list.out, new RegExp(`^${id}\\s.*stopped`, "m"));
      });
    } finally {
      const status = await server.stop();
      assert.equal(status.code, 0, server.lines.join("\n"));
    }
  } finally {
    await Deno.remove(staged.root, { recursive: true });
  }
});

Deno.test("the CLI warns once about a server of another major version", async () => {
  const staged = await stageAll({ version: "9.0.0" });
  const server = await startStagedServer(staged);
  // The CLI from source: this release, against a server claiming 9.0.0.
  const cli = [Deno.execPath(), "run", "-A", join(REPO, "client", "main.ts")];
  try {
    const warning = new RegExp(
      `^Warning: the server at ${server.address} runs telejob-server 9\\.0\\.0, and this telejob is ${
        VERSION.replaceAll(".", "\\.")
      }, a different major version`,
    );
    const list = await telejob(cli, staged, server, ["list"]);
    assert.equal(list.code, 0, list.err);
    assert.match(list.err, warning);
    assert.equal(list.err.trimEnd().split("\n").length, 1, list.err);

    // An error answer carries the version too (in its trailers).
    const missing = await telejob(cli, staged, server, ["status", "999"]);
    assert.equal(missing.code, 1);
    const lines = missing.err.trimEnd().split("\n");
    assert.equal(lines.length, 2, missing.err);
    assert.ok(lines.some((line) => warning.test(line)), missing.err);
    assert.ok(lines.some((line) => /^No job "999"/.test(line)), missing.err);

    // `run` makes several calls on one connection and warns once.
    const run = await telejob(cli, staged, server, ["run", "echo", "hi"]);
    assert.equal(run.code, 0, run.err);
    assert.equal(run.out, "hi\n");
    assert.equal(run.err.trimEnd().split("\n").length, 1, run.err);
    assert.match(run.err, warning);
  } finally {
    await server.stop();
    await Deno.remove(staged.root, { recursive: true });
  }
});
