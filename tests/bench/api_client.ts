/**
 * The gRPC side of the API section, in a process of its own: unary latency
 * and rate, streaming to one and to many clients, TLS handshakes, and on
 * telejob-server also Start latency and a live follower. Prints
 * `RESULT <json>` (an {@linkcode ApiClientResult}) and exits without closing
 * a connection.
 *
 * Why a process of its own: on Deno 2.9.6 a grpc-js client whose idle
 * connections receive the server's GOAWAY (as at every graceful server
 * shutdown) has aborted in nghttp2 (`find_stream_on_goaway_func`), the
 * client-side face of denoland/deno#36788 (see compat/goaway.ts). Exiting
 * before the server shuts down closes the sockets without any GOAWAY.
 *
 *     deno run -A tests/bench/api_client.ts '<ApiClientConfig as JSON>'
 * @module
 */
import type { Plan } from "./plan.ts";
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
import { mbPerSecond, runConcurrent, runFor, summarize } from "./stats.ts";

/** What the parent asks for. */
export interface ApiClientConfig {
  host: string;
  port: number;
  testdata: string;
  plan: Plan;
  /** `floor`: the bare grpc-js server; `server`: telejob-server. */
  mode: "floor" | "server";
}

/** The numbers both servers get. */
export interface GrpcNumbers {
  unaryP50: number;
  unaryP99: number;
  rate1: number;
  rate64: number;
  stream1: number;
  streamMany: number;
  tls: number;
}

/** What the client prints. */
export interface ApiClientResult extends GrpcNumbers {
  /** Start RPC latency percentiles (telejob-server only). */
  startP50?: number;
  startP99?: number;
  /** A finished job of the client's user, for Status calls by others. */
  lastId?: string;
  /** One follower from a job's start, MB/s (telejob-server only). */
  live?: number;
  notes: string[];
}

async function measureGrpc(
  config: ApiClientConfig,
  certs: ClientCerts,
  ids: { status: string; stream: string; streamMany: string },
  notes: string[],
): Promise<GrpcNumbers> {
  const { plan, host, port } = config;
  const address = `${host}:${port}`;
  const client = makeClient(address, certs);
  await waitReady(client, 10_000);

  console.error(`api: ${config.mode}: unary latency and rate`);
  for (let i = 0; i < 50; i++) await jobStatus(client, ids.status);
  const latencies: number[] = [];
  for (let i = 0; i < plan.rpcLatencyCount; i++) {
    const t0 = performance.now();
    await jobStatus(client, ids.status);
    latencies.push(performance.now() - t0);
  }
  const lat = summarize(latencies);
  const rate = async (inFlight: number) => {
    const run = await runFor(
      plan.rpcRateMs,
      inFlight,
      () => jobStatus(client, ids.status),
    );
    return run.count / (run.elapsedMs / 1000);
  };
  const rate1 = await rate(1);
  const rate64 = await rate(64);

  console.error(`api: ${config.mode}: streaming`);
  let t0 = performance.now();
  const one = await readLogs(client, ids.stream, true);
  const stream1 = mbPerSecond(one, performance.now() - t0);
  if (one !== plan.streamBytes) {
    notes.push(`one follower got ${one} of ${plan.streamBytes} bytes`);
  }
  const followers = Array.from(
    { length: plan.streamFollowers },
    () => makeClient(address, certs),
  );
  await Promise.all(followers.map((c) => waitReady(c, 10_000)));
  t0 = performance.now();
  const got = await Promise.all(
    followers.map((c) => readLogs(c, ids.streamMany, true)),
  );
  const streamMany = mbPerSecond(
    got.reduce((a, b) => a + b, 0),
    performance.now() - t0,
  );
  if (got.some((n) => n !== plan.streamManyBytes)) {
    notes.push(`some of the ${plan.streamFollowers} followers missed bytes`);
  }

  console.error(`api: ${config.mode}: new TLS connections`);
  const run = await runConcurrent(
    plan.tlsCount,
    1,
    () => tlsHandshake(host, port, certs),
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

/** Waits until the server answers a call (any gRPC status but UNAVAILABLE). */
async function waitAnswering(
  config: ApiClientConfig,
  certs: ClientCerts,
): Promise<void> {
  const client = makeClient(`${config.host}:${config.port}`, certs);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await jobStatus(client, "1");
      return;
    } catch (error) {
      const code = (error as { code?: number }).code;
      // 14 UNAVAILABLE, 4 DEADLINE_EXCEEDED: not up yet.
      if (code !== undefined && code !== 14 && code !== 4) return;
      if (Date.now() > deadline) {
        throw new Error(
          `The server at port ${config.port} did not answer within 60 s`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Runs the measurements `config` asks for. */
export async function runClient(
  config: ApiClientConfig,
): Promise<ApiClientResult> {
  const { plan } = config;
  const certs = await readClientCerts(config.testdata);
  const notes: string[] = [];
  if (config.mode === "floor") {
    // The floor server's Logs sends as many bytes as the id says.
    const numbers = await measureGrpc(config, certs, {
      status: "1",
      stream: String(plan.streamBytes),
      streamMany: String(plan.streamManyBytes),
    }, notes);
    return { ...numbers, notes };
  }

  await waitAnswering(config, certs);
  const client = makeClient(`${config.host}:${config.port}`, certs);
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

  console.error("api: jobs of known output for Logs");
  const head = (bytes: number) =>
    startJob(client, "head", ["-c", String(bytes), "/dev/zero"]);
  const stream = await head(plan.streamBytes);
  await waitJobFinished(client, stream);
  const streamMany = await head(plan.streamManyBytes);
  await waitJobFinished(client, streamMany);

  const numbers = await measureGrpc(
    config,
    certs,
    { status: lastId, stream, streamMany },
    notes,
  );

  console.error("api: live follow while the job writes");
  await new Deno.Command("sync", { stdin: "null" }).output();
  const t0 = performance.now();
  const liveId = await head(plan.streamBytes);
  const live = await readLogs(client, liveId, true);
  return {
    ...numbers,
    startP50: start.p50,
    startP99: start.p99,
    lastId,
    live: mbPerSecond(live, performance.now() - t0),
    notes,
  };
}

if (import.meta.main) {
  const config = JSON.parse(Deno.args[0]) as ApiClientConfig;
  const result = await runClient(config);
  console.log(`RESULT ${JSON.stringify(result)}`);
  // No close: see the module doc.
  Deno.exit(0);
}
