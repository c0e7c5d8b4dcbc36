/**
 * End-to-end tests of the `telejob` CLI: the real CLI as a subprocess,
 * against the real telejob-server process (real cgroups, real jobs) over
 * mutual TLS 1.3 with the committed test certificates.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  REPO,
  type ServerProcess,
  startServer,
  TESTDATA,
} from "./server_harness.ts";

const CLI = join(REPO, "client", "main.ts");

interface Result {
  code: number;
  stdout: Uint8Array;
  out: string;
  err: string;
}

interface RunOptions {
  /** Test identity whose certificate the CLI uses; default client1. */
  user?: string;
  /** Extra environment (overrides the defaults). */
  env?: Record<string, string>;
  /** Environment variables to leave out. */
  unset?: string[];
}

/** The environment the seed README sets up, for `server` and `user`. */
function cliEnv(
  server: ServerProcess,
  options: RunOptions,
): Record<string, string> {
  const user = options.user ?? "client1";
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
    TELEJOB_ADDRESS: server.address,
    TELEJOB_CLIENT_CERT: join(TESTDATA, `${user}.crt`),
    TELEJOB_CLIENT_KEY: join(TESTDATA, `${user}.key`),
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "server-ca.crt"),
    ...options.env,
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  for (const name of options.unset ?? []) delete env[name];
  return env;
}

function command(
  server: ServerProcess,
  args: string[],
  options: RunOptions,
  stdout: "piped" | "null" = "piped",
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    env: cliEnv(server, options),
    clearEnv: true,
    stdin: "null",
    stdout,
    stderr: "piped",
  });
}

/** Runs `telejob args...` to completion. */
async function telejob(
  server: ServerProcess,
  args: string[],
  options: RunOptions = {},
): Promise<Result> {
  const { code, stdout, stderr } = await command(server, args, options)
    .output();
  const text = new TextDecoder();
  return { code, stdout, out: text.decode(stdout), err: text.decode(stderr) };
}

/** Runs a command that must succeed; returns its stdout. */
async function ok(
  server: ServerProcess,
  args: string[],
  options: RunOptions = {},
): Promise<string> {
  const r = await telejob(server, args, options);
  assert.equal(r.code, 0, `telejob ${args.join(" ")}: ${r.err}`);
  assert.equal(r.err, "", `telejob ${args.join(" ")} wrote to stderr`);
  return r.out;
}

/** Asserts a failure: the exit code and exactly one stderr line matching. */
function assertOneLine(r: Result, code: number, pattern: RegExp) {
  assert.equal(r.code, code, `exit code; stderr: ${r.err}`);
  assert.equal(r.out, "");
  assert.ok(r.err.endsWith("\n"), JSON.stringify(r.err));
  assert.equal(r.err.trimEnd().split("\n").length, 1, `one line: ${r.err}`);
  assert.match(r.err, pattern);
}

/** A spawned CLI whose stdout is read incrementally. */
class Follower {
  readonly child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #text = "";
  readonly #decoder = new TextDecoder();

  constructor(server: ServerProcess, args: string[], options: RunOptions = {}) {
    this.child = command(server, args, options).spawn();
    this.#reader = this.child.stdout.getReader();
  }

  /** Reads until the output contains `needle`; fails if the CLI exits first. */
  async waitFor(needle: string): Promise<string> {
    while (!this.#text.includes(needle)) {
      const { value, done } = await this.#reader.read();
      if (done) {
        const [status, err] = await Promise.all([
          this.child.status,
          new Response(this.child.stderr).text(),
        ]);
        throw new Error(
          `output ended before ${JSON.stringify(needle)}: ${
            JSON.stringify(this.#text)
          }; exit ${status.code}, stderr: ${err}`,
        );
      }
      this.#text += this.#decoder.decode(value, { stream: true });
    }
    return this.#text;
  }

  /** Reads to the end and returns the exit code, all output and stderr. */
  async finish(): Promise<{ code: number; out: string; err: string }> {
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      this.#text += this.#decoder.decode(value, { stream: true });
    }
    const [status, err] = await Promise.all([
      this.child.status,
      new Response(this.child.stderr).text(),
    ]);
    return { code: status.code, out: this.#text, err };
  }
}

const TIME = "\\d\\d:\\d\\d:\\d\\d";

Deno.test("telejob CLI against telejob-server over mutual TLS", async (t) => {
  const server = await startServer();
  try {
    await t.step("the seed README: start, status, stop, status", async () => {
      const env = { TELEJOB_TIME_FORMAT: "15:04:05" };
      const id = (await ok(server, ["start", "sleep", "100"], { env })).trim();
      assert.match(id, /^\d+$/);
      const pad = (s: string, w: number) => s.padEnd(w + 2);
      const idw = Math.max(2, id.length);

      const running = await ok(server, ["status", id], { env });
      const [head, row, ...rest] = running.split("\n");
      assert.equal(
        head,
        `${pad("ID", idw)}COMMAND    STATE    STARTED   STOPPED  EXIT`,
      );
      assert.match(
        row,
        new RegExp(`^${pad(id, idw)}sleep 100  running  ${TIME}$`),
      );
      assert.deepEqual(rest, [""]);

      assert.equal(
        await ok(server, ["stop", "--grace", "1s", id], { env }),
        "",
      );

      // As in the seed: the CA given as a flag after the command.
      const stopped = await ok(
        server,
        ["status", "--server-ca-cert", join(TESTDATA, "server-ca.crt"), id],
        { env, unset: ["TELEJOB_SERVER_CA_CERT"] },
      );
      const lines = stopped.split("\n");
      assert.equal(
        lines[0],
        `${pad("ID", idw)}COMMAND    STATE    STARTED   STOPPED   EXIT`,
      );
      assert.match(
        lines[1],
        new RegExp(
          `^${pad(id, idw)}sleep 100  stopped  ${TIME}  ${TIME}  stopped$`,
        ),
      );
    });

    await t.step(
      "two clients following tail -f both see every line",
      async () => {
        const dir = await Deno.makeTempDir();
        await Deno.chmod(dir, 0o755); // jobs run as their owner's own uid
        const file = join(dir, "appended.log");
        await Deno.writeTextFile(file, "");
        try {
          const id = (await ok(server, ["start", "tail", "-f", file])).trim();
          const a = new Follower(server, ["logs", "-f", id]);
          const b = new Follower(server, ["logs", "--follow", id], {
            user: "client1",
          });
          for (let i = 1; i <= 5; i++) {
            // A third process appends each line.
            const append = await new Deno.Command("sh", {
              args: ["-c", `echo "line $1" >> "$2"`, "sh", String(i), file],
            }).output();
            assert.equal(append.code, 0);
            const want = Array.from({ length: i }, (_, k) => `line ${k + 1}\n`)
              .join("");
            assert.equal(await a.waitFor(`line ${i}\n`), want);
            assert.equal(await b.waitFor(`line ${i}\n`), want);
          }
          await ok(server, ["stop", "--grace", "0", id]);
          // The followers end once the job has ended and they have every byte.
          for (const f of [a, b]) {
            const end = await f.finish();
            assert.equal(end.code, 0, end.err);
            assert.equal(end.err, "");
            assert.ok(end.out.endsWith("line 5\n"), end.out);
          }
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    );

    await t.step(
      "run streams the output and exits with the job's code",
      async () => {
        const r = await telejob(server, [
          "run",
          "sh",
          "-c",
          "echo out; echo err >&2; exit 7",
        ]);
        assert.equal(r.code, 7, r.err);
        assert.equal(r.out, "out\nerr\n");
        assert.equal(r.err, "");

        const killed = await telejob(server, [
          "run",
          "--",
          "sh",
          "-c",
          'kill -TERM "$$"',
        ]);
        assert.equal(killed.code, 128 + 15, killed.err);

        const zero = await telejob(server, ["run", "true"]);
        assert.equal(zero.code, 0, zero.err);
      },
    );

    await t.step("run: Ctrl-C stops the job and exits 130", async () => {
      const f = new Follower(server, [
        "run",
        "--grace",
        "5s",
        "sh",
        "-c",
        'trap "echo got TERM; exit 3" TERM; echo ready; while :; do sleep 0.1; done',
      ]);
      await f.waitFor("ready\n");
      f.child.kill("SIGINT");
      const end = await f.finish();
      assert.equal(end.code, 130, end.err);
      // The job's last words still arrive after Ctrl-C.
      assert.match(end.out, /^ready\n(.*\n)*got TERM\n$/);
      const list = JSON.parse(await ok(server, ["-o", "json", "list"]));
      const job = list.at(-1);
      assert.equal(job.state, "stopped");
      assert.equal(job.exit, "stopped");
    });

    await t.step("logs: binary output round-trips byte for byte", async () => {
      const dir = await Deno.makeTempDir();
      await Deno.chmod(dir, 0o755); // jobs run as their owner's own uid
      try {
        // 1 MiB of random bytes: every byte value, no line structure.
        const blob = new Uint8Array(1 << 20);
        for (let i = 0; i < blob.length; i += 65536) {
          crypto.getRandomValues(blob.subarray(i, i + 65536));
        }
        const file = join(dir, "blob.bin");
        await Deno.writeFile(file, blob);
        const id = (await ok(server, ["start", "cat", file])).trim();
        const followed = await telejob(server, ["logs", "-f", id]);
        assert.equal(followed.code, 0, followed.err);
        assert.deepEqual(followed.stdout, blob);
        const all = await telejob(server, ["logs", id]);
        assert.deepEqual(all.stdout, blob);
        const tail = await telejob(server, ["logs", "--tail", "100", id]);
        assert.deepEqual(tail.stdout, blob.subarray(blob.length - 100));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });

    await t.step("logs into a closed pipe ends quietly", async () => {
      const id = (await ok(server, [
        "start",
        "sh",
        "-c",
        "head -c 20000000 /dev/zero",
      ])).trim();
      const child = command(server, ["logs", "-f", id], {}).spawn();
      const reader = child.stdout.getReader();
      await reader.read();
      // Closing our end makes the CLI's next write fail with EPIPE.
      await reader.cancel();
      const [status, err] = await Promise.all([
        child.status,
        new Response(child.stderr).text(),
      ]);
      assert.equal(err, "");
      assert.equal(status.code, 0);
    });

    await t.step("--output json for start, status and list", async () => {
      const started = JSON.parse(
        await ok(server, ["--output", "json", "start", "sh", "-c", "exit 4"]),
      );
      assert.match(started.id, /^\d+$/);
      await ok(server, ["logs", "-f", started.id]);
      const job = JSON.parse(
        await ok(server, ["status", started.id, "-o", "json"]),
      );
      assert.equal(job.id, started.id);
      assert.equal(job.owner, "client1");
      assert.equal(job.command, "sh");
      assert.deepEqual(job.args, ["-c", "exit 4"]);
      assert.equal(job.state, "exited");
      assert.equal(job.exit, "4");
      assert.equal(job.exitCode, 4);
      assert.ok(!Number.isNaN(Date.parse(job.startedAt)));
      assert.ok(!Number.isNaN(Date.parse(job.endedAt)));
      const list = JSON.parse(await ok(server, ["list", "--output=json"]));
      assert.ok(Array.isArray(list));
      assert.ok(list.some((j: { id: string }) => j.id === started.id));
    });

    await t.step(
      "start passes flags after the command to the job",
      async () => {
        const r = await telejob(server, [
          "run",
          "--env",
          "GREETING=hello world",
          "--cwd",
          "/tmp",
          "sh",
          "-c",
          'echo "$GREETING from $(pwd)" "$@"',
          "sh",
          "--cwd",
          "-la",
        ]);
        assert.equal(r.code, 0, r.err);
        assert.equal(r.out, "hello world from /tmp --cwd -la\n");
      },
    );

    await t.step(
      "another user's job looks like no job; an admin sees it",
      async () => {
        const id = (await ok(server, ["start", "sleep", "30"])).trim();
        assertOneLine(
          await telejob(server, ["status", id], { user: "client2" }),
          1,
          new RegExp(`^No job "${id}": run "telejob list" to see your jobs\n$`),
        );
        assertOneLine(
          await telejob(server, ["stop", id], { user: "client2" }),
          1,
          /^No job/,
        );
        const theirs = JSON.parse(
          await ok(server, ["-o", "json", "list"], { user: "client2" }),
        );
        assert.ok(!theirs.some((j: { id: string }) => j.id === id));
        const all = await ok(server, ["list"], { user: "admin" });
        assert.match(all, /^ID +OWNER +COMMAND +STATE/);
        assert.match(
          all,
          new RegExp(`^${id} +client1 +sleep 30 +running`, "m"),
        );
        await ok(server, ["stop", "--grace", "0", id], { user: "admin" });
        const status = JSON.parse(
          await ok(server, ["-o", "json", "status", id]),
        );
        assert.equal(status.state, "stopped");
      },
    );

    await t.step("failures: one line on stderr, exit 1", async () => {
      assertOneLine(
        await telejob(server, ["status", "99999"]),
        1,
        /^No job "99999": run "telejob list"/,
      );
      assertOneLine(
        await telejob(server, ["list"], {
          env: { TELEJOB_CLIENT_CERT: "/nonexistent/client.crt" },
        }),
        1,
        /^Cannot read the client certificate "\/nonexistent\/client.crt" \(no such file\): pass --client-cert/,
      );
      assertOneLine(
        await telejob(server, ["list"], { user: "client-expired" }),
        1,
        /^The client certificate ".*client-expired.crt" expired on \d{4}-\d\d-\d\dT/,
      );
      assertOneLine(
        await telejob(server, ["list"], { user: "client-wrong-ca" }),
        1,
        /refused the TLS handshake: check that the client certificate/,
      );
      assertOneLine(
        await telejob(server, ["list"], {
          env: { TELEJOB_SERVER_CA_CERT: join(TESTDATA, "client-ca.crt") },
        }),
        1,
        /^Cannot trust the certificate of telejob-server at .*--server-ca-cert/,
      );
      // A port nobody listens on: bind one, then close it.
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const closedPort = (listener.addr as Deno.NetAddr).port;
      listener.close();
      assertOneLine(
        await telejob(server, ["list"], {
          env: { TELEJOB_ADDRESS: `127.0.0.1:${closedPort}` },
        }),
        1,
        /^Cannot reach telejob-server at 127\.0\.0\.1:\d+ \(connection refused\): check --address/,
      );
      assertOneLine(
        await telejob(server, ["start", "no-such-command-xyz"]),
        1,
        /no-such-command-xyz/,
      );
    });

    await t.step("usage errors: one line with a hint, exit 2", async () => {
      assertOneLine(
        await telejob(server, ["start", "--foo", "ls"]),
        2,
        /^Unknown flag --foo for "telejob start": run "telejob start --help"$/m,
      );
      assertOneLine(
        await telejob(server, ["stop"]),
        2,
        /^Missing job ID for "telejob stop"/,
      );
      assertOneLine(
        await telejob(server, ["frobnicate"]),
        2,
        /^Unknown command/,
      );
      assertOneLine(
        await telejob(server, ["start", "--memory", "lots", "ls"]),
        2,
        /^Invalid --memory "lots"/,
      );
      assertOneLine(
        await telejob(server, ["list"], { unset: ["TELEJOB_CLIENT_KEY"] }),
        2,
        /^Missing client key: pass --client-key FILE or set \$TELEJOB_CLIENT_KEY$/m,
      );
    });

    await t.step("--help on every command", async () => {
      for (const cmd of ["start", "run", "stop", "status", "list", "logs"]) {
        const help = await ok(server, [cmd, "--help"]);
        assert.match(help, new RegExp(`^Usage: telejob ${cmd} `));
        assert.match(help, /--address HOST:PORT/);
      }
      const top = await ok(server, ["--help"]);
      assert.match(top, /^Usage: telejob /);
      assert.match(top, /logs +Write a job's output/);
    });

    await t.step("the dev entry point: deno run main.ts telejob", async () => {
      const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(REPO, "main.ts"), "telejob", "list"],
        env: cliEnv(server, {
          env: { TELEJOB_ADDRESS: `localhost:${server.port}` },
        }),
        clearEnv: true,
        stdin: "null",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      assert.match(new TextDecoder().decode(stdout), /^ID +COMMAND +STATE/);
    });

    assert.ok(server.alive(), "the server survived the CLI tests");
  } finally {
    await server.stop();
  }
});
