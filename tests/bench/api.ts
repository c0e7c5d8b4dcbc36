/**
 * The API section: a real `telejob-server` process over mutual TLS with the
 * committed test certificates, the real `telejob` CLI, and as the floor a
 * bare grpc-js server on Deno serving the same service with no engine.
 * @module
 */
import { READ_CHUNK_BYTES } from "../../server/jobs/output.ts";
import type { ApiClientConfig, ApiClientResult } from "./api_client.ts";
import type { SectionContext } from "./context.ts";
import { delay, readMemory } from "./proc.ts";
import { formatBytes, summarize } from "./stats.ts";

const HOST = "127.0.0.1";

// No gRPC client runs in this process: every one runs in a child process
// (api_client.ts, churn_client.ts, min_client.ts, the CLI) that exits before
// the server it talks to shuts down, because a grpc-js client on Deno 2.9.6
// whose connections receive the server's GOAWAY has aborted in nghttp2.

/** A server process a section started. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  port: number;
  /** Set once the process has exited. */
  exited?: Deno.CommandStatus;
  /** Where its stderr goes (one JSON line per RPC for telejob-server). */
  logFile: string;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function tail(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Spawns `args` with stderr appended to `logFile`, through an exec'ing
 * `/bin/sh` so the pid is the program's own and thousands of log lines do
 * not pass through this process.
 */
function spawnLogged(
  args: string[],
  logFile: string,
  options: { cwd: string; stdout: "piped" | "null" },
): Deno.ChildProcess {
  return new Deno.Command("/bin/sh", {
    args: ["-c", 'log=$1; shift; exec "$@" 2>>"$log"', "sh", logFile, ...args],
    cwd: options.cwd,
    stdin: "null",
    stdout: options.stdout,
    stderr: "inherit",
  }).spawn();
}

function track(
  server: ServerProcess,
  ctx: SectionContext,
  label: string,
): void {
  server.child.status.then((status) => {
    server.exited = status;
  });
  ctx.cleanup.defer(`kill ${label}`, async () => {
    if (server.exited) return;
    try {
      server.child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await server.child.status;
  });
}

async function startFloorServer(
  ctx: SectionContext,
  testdata: string,
): Promise<ServerProcess> {
  const logFile = `${ctx.workDir}/grpc-floor.log`;
  const child = spawnLogged(
    [
      Deno.execPath(),
      "run",
      "-A",
      `${ctx.repoRoot}/tests/bench/grpc_floor_server.ts`,
      testdata,
    ],
    logFile,
    { cwd: ctx.repoRoot, stdout: "piped" },
  );
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/PORT (\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`The gRPC floor server exited: ${await tail(logFile)}`);
    }
    text += value;
  }
  reader.releaseLock();
  // Keep draining stdout so the pipe never fills.
  child.stdout.pipeTo(new WritableStream()).catch(() => {});
  const server: ServerProcess = {
    child,
    port: Number(/PORT (\d+)/.exec(text)![1]),
    logFile,
  };
  track(server, ctx, "gRPC floor server");
  return server;
}

/**
 * Starts telejob-server on a free port with its data in
 * `<workDir>/server-data` (the list section fills that first).
 */
export function startTelejobServer(
  ctx: SectionContext,
  testdata: string,
  outputLimit: number,
): ServerProcess {
  const port = freePort();
  const dataDir = `${ctx.workDir}/server-data`;
  const logFile = `${ctx.workDir}/telejob-server.log`;
  const child = spawnLogged(
    [
      Deno.execPath(),
      "run",
      "-A",
      `${ctx.repoRoot}/main.ts`,
      "telejob-server",
      "--address",
      `${HOST}:${port}`,
      "--server-cert",
      `${testdata}/server.crt`,
      "--server-key",
      `${testdata}/server.key`,
      "--client-ca-cert",
      `${testdata}/client-ca.crt`,
      "--data-dir",
      dataDir,
      "--cgroup-parent",
      ctx.cgroupParent,
      "--output-limit",
      String(outputLimit),
    ],
    logFile,
    { cwd: ctx.repoRoot, stdout: "null" },
  );
  const server: ServerProcess = { child, port, logFile };
  track(server, ctx, "telejob-server");
  return server;
}

/** Waits until something accepts TCP connections on `port`. */
export async function waitListening(
  server: ServerProcess,
  label: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exited) {
      throw new Error(
        `${label} exited with code ${server.exited.code} before listening: ${await tail(
          server.logFile,
        )}`,
      );
    }
    try {
      const conn = await Deno.connect({ hostname: HOST, port: server.port });
      conn.close();
      return;
    } catch {
      if (Date.now() > deadline) {
        throw new Error(
          `${label} did not listen within 60 s: ${await tail(server.logFile)}`,
        );
      }
      await delay(100);
    }
  }
}

/** Runs api_client.ts against `port` and returns what it measured. */
async function runClient(
  ctx: SectionContext,
  config: Omit<ApiClientConfig, "plan" | "host">,
): Promise<ApiClientResult> {
  const full: ApiClientConfig = { ...config, plan: ctx.plan, host: HOST };
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ctx.repoRoot}/tests/bench/api_client.ts`,
      JSON.stringify(full),
    ],
    cwd: ctx.repoRoot,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const line = text.split("\n").find((l) => l.startsWith("RESULT "));
  if (!out.success || !line) {
    throw new Error(
      `The gRPC client (${config.mode}) failed with ${
        out.signal ? `signal ${out.signal}` : `code ${out.code}`
      }`,
    );
  }
  const result = JSON.parse(line.slice("RESULT ".length)) as ApiClientResult;
  for (const note of result.notes) ctx.rec.note(`${config.mode}: ${note}`);
  return result;
}

/**
 * Wall time of `deno run` of `args`, `count` times after one warm-up. A
 * failed run is kept out of the times and reported in `failures`.
 */
async function wallTimes(
  args: string[],
  count: number,
  options: { cwd: string; env: Record<string, string> },
): Promise<{ times: number[]; failures: string[] }> {
  const times: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i <= count; i++) {
    const t0 = performance.now();
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const ms = performance.now() - t0;
    if (!out.success) {
      const how = out.signal ? `signal ${out.signal}` : `code ${out.code}`;
      failures.push(
        `${how}: ${
          new TextDecoder().decode(out.stderr).trim().split("\n").at(-1)
        }`,
      );
    } else if (i > 0) times.push(ms);
  }
  if (times.length === 0) {
    throw new Error(`deno ${args.join(" ")} failed every time: ${failures[0]}`);
  }
  return { times, failures };
}

/** Runs the API section. */
export async function runApi(ctx: SectionContext): Promise<void> {
  const { plan, rec, floors } = ctx;
  const testdata = `${ctx.repoRoot}/tests/testdata`;
  const streamBytes = plan.streamBytes;

  console.error("api: floor: bare grpc-js server on Deno, same certificates");
  const floorServer = await startFloorServer(ctx, testdata);
  const f = await runClient(ctx, {
    mode: "floor",
    port: floorServer.port,
    testdata,
  });
  floorServer.child.kill("SIGTERM");
  await floorServer.child.status;
  const floorDetail = "bare grpc-js server on Deno, same mTLS certificates, " +
    "no engine";
  for (
    const [key, label, value, unit] of [
      ["unary.p50", "Status RPC p50", f.unaryP50, "ms"],
      ["unary.p99", "Status RPC p99", f.unaryP99, "ms"],
      ["unary_rate1", "unary RPCs/s, 1 in flight", f.rate1, "/s"],
      ["unary_rate64", "unary RPCs/s, 64 in flight", f.rate64, "/s"],
      ["stream1", "stream to 1 client", f.stream1, "MB/s"],
      [
        "stream_many",
        `stream to ${plan.streamFollowers} clients, aggregate`,
        f.streamMany,
        "MB/s",
      ],
      ["tls", "new mTLS connections/s (handshake only)", f.tls, "/s"],
    ] as const
  ) {
    rec.add({
      key: `api.floor.${key}`,
      label: `floor: ${label}`,
      value,
      unit,
      detail: floorDetail,
    });
  }

  console.error("api: telejob-server");
  try {
    await Deno.stat(`${ctx.repoRoot}/server/main.ts`);
  } catch {
    throw new Error(
      "server/main.ts is not there yet: only the gRPC floor was measured",
    );
  }
  const server = startTelejobServer(
    ctx,
    testdata,
    streamBytes + 2 ** 30,
  );
  const address = `${HOST}:${server.port}`;
  await waitListening(server, "telejob-server");
  await delay(500);
  const idle = await readMemory(server.child.pid);
  const t = await runClient(ctx, {
    mode: "server",
    port: server.port,
    testdata,
  });
  const lastId = t.lastId!;
  const engineNote = floors["engine.start.p50"] === undefined
    ? ""
    : `; engine alone p50 ${floors["engine.start.p50"].toFixed(2)} ms`;
  rec.add({
    key: "api.start.p50",
    label: "Start RPC p50 (warm connection)",
    value: t.startP50!,
    unit: "ms",
    floor: floors["engine.start.p50"],
    target: { op: "<=", value: 3 },
    detail: `${plan.rpcLatencyCount} serial Start of "true" over one ` +
      `mTLS connection; floor: the engine's start in-process` +
      `; bare grpc-js unary p50 ${f.unaryP50.toFixed(2)} ms`,
  });
  rec.add({
    key: "api.start.p99",
    label: "Start RPC p99",
    value: t.startP99!,
    unit: "ms",
    floor: floors["engine.start.p99"],
    detail: `same run${engineNote}`,
  });
  rec.add({
    key: "api.status.p50",
    label: "Status RPC p50 (warm connection)",
    value: t.unaryP50,
    unit: "ms",
    floor: f.unaryP50,
    detail: `${plan.rpcLatencyCount} serial calls; floor: bare grpc-js server`,
  });
  rec.add({
    key: "api.unary_rate1",
    label: "unary RPCs/s, 1 in flight",
    value: t.rate1,
    unit: "/s",
    floor: f.rate1,
    detail: `Status for ${plan.rpcRateMs / 1000} s over one connection`,
  });
  rec.add({
    key: "api.unary_rate64",
    label: "unary RPCs/s, 64 in flight",
    value: t.rate64,
    unit: "/s",
    floor: f.rate64,
    detail: `Status for ${plan.rpcRateMs / 1000} s over one connection`,
  });
  rec.add({
    key: "api.stream1",
    label: "Logs to 1 follower",
    value: t.stream1,
    unit: "MB/s",
    floor: f.stream1,
    target: { op: ">=", value: 200 },
    detail: `${formatBytes(streamBytes)} of finished output, follow=true; ` +
      `floor: bare grpc-js streaming ${READ_CHUNK_BYTES / 1024} KiB messages` +
      (floors["engine.replay1"] === undefined
        ? ""
        : `; engine alone ${floors["engine.replay1"].toFixed(0)} MB/s`),
  });
  rec.add({
    key: "api.stream_many",
    label: `Logs to ${plan.streamFollowers} followers, aggregate`,
    value: t.streamMany,
    unit: "MB/s",
    floor: f.streamMany,
    detail: `${plan.streamFollowers} clients, one connection each, ` +
      `${formatBytes(plan.streamManyBytes)} each`,
  });
  rec.add({
    key: "api.tls",
    label: "new mTLS connections/s (handshake only)",
    value: t.tls,
    unit: "/s",
    floor: f.tls,
    detail: `${plan.tlsCount} sequential node:tls handshakes (TLS 1.3, ` +
      `ALPN h2, client certificate), closed without an HTTP/2 frame`,
  });

  rec.add({
    key: "api.stream1_live",
    label: "Logs to 1 follower, live from the job's start",
    value: t.live!,
    unit: "MB/s",
    floor: floors["engine.follow1"],
    detail: `Start then Logs follow=true; floor: the engine's live follower`,
  });

  console.error("api: connect, one call, close (what a CLI does)");
  const churn = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      `${ctx.repoRoot}/tests/bench/churn_client.ts`,
      address,
      lastId,
      testdata,
      String(plan.tlsCount),
    ],
    cwd: ctx.repoRoot,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const churnOut = new TextDecoder().decode(churn.stdout);
  const done = /DONE (\d+) ([\d.]+)/.exec(churnOut);
  if (done) {
    rec.add({
      key: "api.connect_call_close",
      label: "connect + Status + close, per second",
      value: Number(done[1]) / (Number(done[2]) / 1000),
      unit: "/s",
      detail: `${done[1]} sequential grpc-js clients in one process, each ` +
        `closed (GOAWAY) after one call`,
    });
  } else {
    const at = [...churnOut.matchAll(/AT (\d+)/g)].at(-1)?.[1] ?? "0";
    rec.note(
      `the connect-call-close client died after ${at}+ of ${plan.tlsCount} ` +
        `connections (${
          churn.signal ? `signal ${churn.signal}` : `exit code ${churn.code}`
        }): ${
          new TextDecoder().decode(churn.stderr).trim().split("\n").at(-1)
        }`,
    );
  }
  await delay(200);
  if (server.exited) {
    throw new Error(
      `telejob-server died during connection churn (code ${server.exited.code}, signal ${server.exited.signal}): ${await tail(
        server.logFile,
      )}`,
    );
  }

  console.error("api: telejob status from the CLI");
  const env = {
    TELEJOB_ADDRESS: address,
    TELEJOB_CLIENT_CERT: `${testdata}/client1.crt`,
    TELEJOB_CLIENT_KEY: `${testdata}/client1.key`,
    TELEJOB_SERVER_CA_CERT: `${testdata}/server-ca.crt`,
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    HOME: Deno.env.get("HOME") ?? "/root",
  };
  const empty = `${ctx.workDir}/empty.ts`;
  await Deno.writeTextFile(empty, "\n");
  const runs = {
    bare: await wallTimes(["run", "-A", empty], plan.cliCount, {
      cwd: ctx.repoRoot,
      env,
    }),
    minimal: await wallTimes(
      [
        "run",
        "-A",
        `${ctx.repoRoot}/tests/bench/min_client.ts`,
        address,
        lastId,
        testdata,
      ],
      plan.cliCount,
      { cwd: ctx.repoRoot, env },
    ),
    cli: await wallTimes(
      ["run", "-A", `${ctx.repoRoot}/main.ts`, "telejob", "status", lastId],
      plan.cliCount,
      { cwd: ctx.repoRoot, env },
    ),
  };
  for (const [name, run] of Object.entries(runs)) {
    if (run.failures.length > 0) {
      rec.note(
        `${name}: ${run.failures.length} of ${
          plan.cliCount + 1
        } runs failed, first: ${run.failures[0]}`,
      );
    }
  }
  const bare = summarize(runs.bare.times);
  const minimal = summarize(runs.minimal.times);
  const cli = summarize(runs.cli.times);
  rec.add({
    key: "api.cli_status.p50",
    label: "telejob status wall time p50",
    value: cli.p50,
    unit: "ms",
    floor: minimal.p50,
    detail: `${plan.cliCount} runs of deno run -A main.ts telejob status ` +
      `(from source, cached), process start to exit; floor: a minimal ` +
      `Deno grpc-js client making the same call; deno run of an empty ` +
      `file: ${bare.p50.toFixed(0)} ms`,
  });
  rec.add({
    key: "api.deno_empty.p50",
    label: "deno run of an empty file p50",
    value: bare.p50,
    unit: "ms",
  });

  const end = await readMemory(server.child.pid);
  rec.add({
    key: "api.server_rss",
    label: "server RSS idle / at the end / peak",
    value: end.rss / 1e6,
    unit: "MB",
    detail: `idle after start ${(idle.rss / 1e6).toFixed(0)} MB, peak ` +
      `${(end.peakRss / 1e6).toFixed(0)} MB`,
  });

  console.error("api: SIGTERM to telejob-server");
  const t0 = performance.now();
  server.child.kill("SIGTERM");
  const stopped = await Promise.race([
    server.child.status,
    delay(30_000).then(() => undefined),
  ]);
  if (!stopped) {
    rec.note("telejob-server did not exit within 30 s of SIGTERM");
  } else {
    rec.note(
      `telejob-server exited ${
        stopped.signal ? `on ${stopped.signal}` : `with code ${stopped.code}`
      } ${((performance.now() - t0) / 1000).toFixed(2)} s after SIGTERM`,
    );
  }
}
