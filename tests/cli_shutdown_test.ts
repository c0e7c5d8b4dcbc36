/**
 * A server restart must not crash its clients: the real telejob-server
 * process gets SIGTERM while the real `telejob` CLI follows a job (`logs -f`
 * and `run`) and while a long-lived grpc-js client keeps idle connections
 * that have carried calls.
 *
 * On Deno 2.9.4 – 2.9.6 a client whose connection parses the server's HTTP/2
 * GOAWAY can die of SIGSEGV or an nghttp2 assertion
 * (`find_stream_on_goaway_func`), so the server closes connections at
 * shutdown without GOAWAY (compat/connections.ts). Without that, the idle
 * client below dies in most rounds (every round under `MALLOC_PERTURB_`).
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
const IDLE_CLIENT = join(REPO, "tests", "fixtures", "idle_grpc_client.ts");
const CONFIG = join(REPO, "deno.json");
/** Shutdown rounds per test run: the crash it guards against is a race. */
const ROUNDS = 3;

/** Exit codes of a process killed by SIGABRT or SIGSEGV. */
const CRASH_CODES = [134, 139];

/** A child process whose stdout is read as it comes. */
class Child {
  readonly child: Deno.ChildProcess;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #text = "";
  #stdinOpen: boolean;
  #err: Promise<string> | undefined;

  constructor(args: string[], env: Record<string, string>, stdin = false) {
    this.child = new Deno.Command(Deno.execPath(), {
      args,
      env,
      clearEnv: true,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stdout.getReader();
    this.#stdinOpen = stdin;
  }

  /** Closes stdin if it is piped and still open. */
  async closeStdin(): Promise<void> {
    if (!this.#stdinOpen) return;
    this.#stdinOpen = false;
    await this.child.stdin.close().catch(() => {});
  }

  /** Reads until stdout contains `needle`; fails if it ends first. */
  async waitFor(needle: string): Promise<void> {
    while (!this.#text.includes(needle)) {
      const { value, done } = await this.#reader.read();
      if (done) {
        const { code, err } = await this.finish();
        throw new Error(
          `stdout ended before ${JSON.stringify(needle)}: ${
            JSON.stringify(this.#text)
          }; exit ${code}, stderr: ${err}`,
        );
      }
      this.#text += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Reads to the end; returns the exit code, stdout and stderr. */
  async finish(): Promise<{ code: number; out: string; err: string }> {
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) break;
      this.#text += this.#decoder.decode(value, { stream: true });
    }
    this.#err ??= new Response(this.child.stderr).text();
    const [status, err] = await Promise.all([this.child.status, this.#err]);
    return { code: status.code, out: this.#text, err };
  }
}

function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
    NO_COLOR: "1",
    // Makes the use-after-free show on its first occurrence.
    MALLOC_PERTURB_: "165",
  };
  const denoDir = Deno.env.get("DENO_DIR");
  if (denoDir) env.DENO_DIR = denoDir;
  return env;
}

function cli(server: ServerProcess, args: string[]): Child {
  return new Child(["run", "-A", CLI, ...args], {
    ...baseEnv(),
    TELEJOB_ADDRESS: server.address,
    TELEJOB_CLIENT_CERT: join(TESTDATA, "client1.crt"),
    TELEJOB_CLIENT_KEY: join(TESTDATA, "client1.key"),
    TELEJOB_SERVER_CA_CERT: join(TESTDATA, "server-ca.crt"),
  });
}

function assertNoCrash(
  what: string,
  r: { code: number; err: string },
): void {
  assert.ok(
    !CRASH_CODES.includes(r.code),
    `${what} crashed (exit ${r.code}): ${r.err}`,
  );
  assert.doesNotMatch(r.err, /Assertion|panicked|Segmentation/, what);
}

/** The CLI's one line when the server ends its call at shutdown. */
const SHUTDOWN_LINE =
  /^The server at 127\.0\.0\.1:\d+ is shutting down and ended the call: run the command again once it is back\n$/;

Deno.test("a server shutdown ends followers with one line and crashes no client", async (t) => {
  for (let round = 1; round <= ROUNDS; round++) {
    await t.step(`round ${round}`, async () => {
      const server = await startServer();
      const children: Child[] = [];
      try {
        const start = cli(server, [
          "start",
          "--",
          "sh",
          "-c",
          "echo started; exec sleep 1000",
        ]);
        children.push(start);
        const started = await start.finish();
        assert.equal(started.code, 0, started.err);
        const id = started.out.trim();

        const follower = cli(server, ["logs", "-f", id]);
        children.push(follower);
        const runner = cli(server, [
          "run",
          "--",
          "sh",
          "-c",
          "echo running; exec sleep 1000",
        ]);
        children.push(runner);
        const idle = new Child(
          [
            "run",
            "-A",
            "--config",
            CONFIG,
            IDLE_CLIENT,
            String(server.port),
            "4",
          ],
          baseEnv(),
          true,
        );
        children.push(idle);
        await Promise.all([
          follower.waitFor("started\n"),
          runner.waitFor("running\n"),
          idle.waitFor("READY\n"),
        ]);

        const status = await server.stop("SIGTERM");
        assert.equal(status.code, 0, "server exit code");
        assert.ok(
          server.logs().some((e) => e.event === "stopped"),
          "server logged its graceful stop",
        );

        for (
          const [name, child] of [["logs -f", follower], [
            "run",
            runner,
          ]] as const
        ) {
          const r = await child.finish();
          assertNoCrash(`telejob ${name}`, r);
          assert.equal(
            r.code,
            1,
            `telejob ${name} exit code; stderr: ${r.err}`,
          );
          assert.match(r.err, SHUTDOWN_LINE, `telejob ${name} stderr`);
        }

        await idle.closeStdin();
        const r = await idle.finish();
        assertNoCrash("the idle grpc-js client", r);
        assert.equal(r.code, 0, `idle client exit code; stderr: ${r.err}`);
        assert.deepEqual(
          r.out.trim().split("\n"),
          ["READY", ...Array(4).fill("AFTER UNAVAILABLE")],
        );
      } finally {
        for (const c of children) {
          await c.closeStdin();
          try {
            c.child.kill("SIGKILL");
          } catch { /* already exited */ }
          await c.finish().catch(() => {});
        }
        await server.stop("SIGKILL");
      }
    });
  }
});
