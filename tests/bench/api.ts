/**
 * The API section: a real `telejob-server` process over mutual TLS with the
 * committed test certificates, the real `telejob` CLI, and as the floor a
 * bare grpc-js server on Deno serving the same service with no engine.
 * @module
 */
import type { TelejobClient } from "../../proto/gen/telejob/v1/telejob.ts";
import { READ_CHUNK_BYTES } from "../../server/jobs/output.ts";
import type { SectionContext } from "./context.ts";
import {
  type ClientCerts,
  jobStatus,
  makeClient,
  readClientCerts,
  readLogs,
  startJob,
  tlsHandshake,
  waitJobFinished,
  waitReady,
} from "./grpc_client.ts";
import { delay, readMemory } from "./proc.ts";
import {
  formatBytes,
  mbPerSecond,
  runConcurrent,
  runFor,
  summarize,
} from "./stats.ts";

const HOST = "127.0.0.1";

/** A server process the section started. */
interface ServerProcess {
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

function startTelejobServer(
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

/** Waits until `client` gets an answer from the server (any gRPC status but UNAVAILABLE). */
async function waitAnswering(
  client: TelejobClient,
  server: ServerProcess,
  label: string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (server.exited) {
      throw new Error(
        `${label} exited with code ${server.exited.code} before answering: ${await tail(
          server.logFile,
        )}`,
      );
    }
    try {
      await jobStatus(client, "1");
      return;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== undefined && code !== 14 && code !== 4) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${label} did not answer within 60 s: ${await tail(server.logFile)}`,
        );
      }
      await delay(100);
    }
  }
}

interface GrpcNumbers {
  unaryP50: number;
  unaryP99: number;
  rate1: number;
  rate64: number;
  stream1: number;
  streamMany: number;
  tls: number;
}

/**
 * The gRPC measurements that apply to both servers: unary latency and rate,
 * streaming to one and to many clients, TLS handshakes per second.
 * `streamJob` returns a job id whose output is `bytes` long (on the floor
 * server, the byte count itself).
 */
async function measureGrpc(
  ctx: SectionContext,
  options: {
    port: number;
    certs: ClientCerts;
    statusId: string;
    streamId: string;
    streamBytes: number;
    /** A job id whose output each of the many followers reads. */
    streamManyId: string;
    streamManyBytes: number;
    label: string;
  },
): Promise<GrpcNumbers> {
  const { plan } = ctx;
  const address = `${HOST}:${options.port}`;
  const client = makeClient(address, options.certs);
  ctx.cleanup.defer(`close ${options.label} client`, () => client.close());
  await waitReady(client, 10_000);

  console.error(`api: ${options.label}: unary latency and rate`);
  for (let i = 0; i < 50; i++) await jobStatus(client, options.statusId);
  const latencies: number[] = [];
  for (let i = 0; i < plan.rpcLatencyCount; i++) {
    const t0 = performance.now();
    await jobStatus(client, options.statusId);
    latencies.push(performance.now() - t0);
  }
  const lat = summarize(latencies);
  const rate = async (inFlight: number) => {
    const run = await runFor(
      plan.rpcRateMs,
      inFlight,
      () => jobStatus(client, options.statusId),
    );
    return run.count / (run.elapsedMs / 1000);
  };
  const rate1 = await rate(1);
  const rate64 = await rate(64);

  console.error(`api: ${options.label}: streaming`);
  let t0 = performance.now();
  const one = await readLogs(client, options.streamId, true);
  const stream1 = mbPerSecond(one, performance.now() - t0);
  if (one !== options.streamBytes) {
    ctx.rec.note(
      `${options.label}: one follower got ${one} of ${options.streamBytes} bytes`,
    );
  }
  const followers = Array.from(
    { length: plan.streamFollowers },
    () => makeClient(address, options.certs),
  );
  ctx.cleanup.defer(
    `close ${options.label} followers`,
    () => followers.forEach((c) => c.close()),
  );
  await Promise.all(followers.map((c) => waitReady(c, 10_000)));
  t0 = performance.now();
  const got = await Promise.all(
    followers.map((c) => readLogs(c, options.streamManyId, true)),
  );
  const streamMany = mbPerSecond(
    got.reduce((a, b) => a + b, 0),
    performance.now() - t0,
  );
  for (const c of followers) c.close();

  console.error(`api: ${options.label}: new TLS connections`);
  const run = await runConcurrent(
    plan.tlsCount,
    1,
    () => tlsHandshake(HOST, options.port, options.certs),
  );
  if (run.errors.length > 0) throw run.errors[0];
  return {
    unaryP50: lat.p50,
    unaryP99: lat.p99,
    rate1,
    rate64,
    stream1,
    streamMany,
    tls: run.results.length / (run.elapsedMs / 1000),
  };
}

/** Wall time of `deno run` of `args`, `count` times after one warm-up. */
async function wallTimes(
  args: string[],
  count: number,
  options: { cwd: string; env: Record<string, string> },
): Promise<number[]> {
  const times: number[] = [];
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
      throw new Error(
        `deno ${args.join(" ")} failed: ${
          new TextDecoder().decode(out.stderr).trim()
        }`,
      );
    }
    if (i > 0) times.push(ms);
  }
  return times;
}

/** Runs the API section. */
export async function runApi(ctx: SectionContext): Promise<void> {
  const { plan, rec, floors } = ctx;
  const testdata = `${ctx.repoRoot}/tests/testdata`;
  const certs = await readClientCerts(testdata);
  const streamBytes = plan.streamBytes;

  console.error("api: floor: bare grpc-js server on Deno, same certificates");
  const floorServer = await startFloorServer(ctx, testdata);
  const f = await measureGrpc(ctx, {
    port: floorServer.port,
    certs,
    statusId: "1",
    // The floor server's Logs sends as many bytes as the id says.
    streamId: String(streamBytes),
    streamBytes,
    streamManyId: String(plan.streamManyBytes),
    streamManyBytes: plan.streamManyBytes,
    label: "floor server",
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
  const client = makeClient(address, certs);
  ctx.cleanup.defer("close the main client", () => client.close());
  await waitAnswering(client, server, "telejob-server");
  const idle = await readMemory(server.child.pid);

  console.error("api: Start RPC latency over a warm connection");
  let lastId = "";
  for (let i = 0; i < 20; i++) lastId = await startJob(client, "true");
  const starts: number[] = [];
  for (let i = 0; i < plan.rpcLatencyCount; i++) {
    const t0 = performance.now();
    lastId = await startJob(client, "true");
    starts.push(performance.now() - t0);
  }
  await waitJobFinished(client, lastId);
  const start = summarize(starts);
  const engineNote = floors["engine.start.p50"] === undefined
    ? ""
    : `; engine alone p50 ${floors["engine.start.p50"].toFixed(2)} ms`;
  rec.add({
    key: "api.start.p50",
    label: "Start RPC p50 (warm connection)",
    value: start.p50,
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
    value: start.p99,
    unit: "ms",
    floor: floors["engine.start.p99"],
    detail: `same run${engineNote}`,
  });

  // A finished job of known output for the streaming measurements.
  console.error(`api: a job writing ${formatBytes(streamBytes)} for Logs`);
  const streamId = await startJob(
    client,
    "head",
    ["-c", String(streamBytes), "/dev/zero"],
  );
  await waitJobFinished(client, streamId);
  const streamManyId = await startJob(
    client,
    "head",
    ["-c", String(plan.streamManyBytes), "/dev/zero"],
  );
  await waitJobFinished(client, streamManyId);

  const t = await measureGrpc(ctx, {
    port: server.port,
    certs,
    statusId: lastId,
    streamId,
    streamBytes,
    streamManyId,
    streamManyBytes: plan.streamManyBytes,
    label: "telejob-server",
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

  console.error("api: live follow while the job writes");
  let t0 = performance.now();
  const liveId = await startJob(
    client,
    "head",
    ["-c", String(streamBytes), "/dev/zero"],
  );
  const live = await readLogs(client, liveId, true);
  rec.add({
    key: "api.stream1_live",
    label: "Logs to 1 follower, live from the job's start",
    value: mbPerSecond(live, performance.now() - t0),
    unit: "MB/s",
    floor: floors["engine.follow1"],
    detail: `Start then Logs follow=true; floor: the engine's live follower`,
  });

  console.error("api: connect, one call, close (what a CLI does)");
  t0 = performance.now();
  for (let i = 0; i < plan.tlsCount; i++) {
    const c = makeClient(address, certs);
    try {
      await jobStatus(c, lastId);
    } finally {
      c.close();
    }
  }
  rec.add({
    key: "api.connect_call_close",
    label: "connect + Status + close, per second",
    value: plan.tlsCount / ((performance.now() - t0) / 1000),
    unit: "/s",
    detail: `${plan.tlsCount} sequential grpc-js clients, each closed ` +
      `(GOAWAY) after one call`,
  });
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
  const bare = summarize(
    await wallTimes(["run", "-A", empty], plan.cliCount, {
      cwd: ctx.repoRoot,
      env,
    }),
  );
  const minimal = summarize(
    await wallTimes(
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
  );
  const cli = summarize(
    await wallTimes(
      ["run", "-A", `${ctx.repoRoot}/main.ts`, "telejob", "status", lastId],
      plan.cliCount,
      { cwd: ctx.repoRoot, env },
    ),
  );
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

  client.close();
  console.error("api: SIGTERM to telejob-server");
  t0 = performance.now();
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
