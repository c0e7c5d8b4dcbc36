/**
 * Test harness for the end-to-end server tests: starts the real
 * telejob-server process (real cgroups, real mutual TLS) on a free loopback
 * port with the committed test certificates, and makes grpc-js clients for
 * the test identities.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  ListRequest,
  StartRequest,
  StatusRequest,
  StopRequest,
  TelejobClient,
} from "../proto/gen/telejob/v1/telejob.ts";

/** Root of the repository. */
export const REPO = fileURLToPath(new URL("..", import.meta.url));
/** The committed, insecure test certificates. */
export const TESTDATA = join(REPO, "tests", "testdata");

/** Reads `tests/testdata/<name>`. */
export function testdata(name: string): Uint8Array {
  return Deno.readFileSync(join(TESTDATA, name));
}

/** Options of {@linkcode startServer}. */
export interface StartServerOptions {
  /** Extra flags after the defaults (later flags win). */
  args?: string[];
  /** Extra environment for the server process. */
  env?: Record<string, string>;
  /** The command that runs the server; default `deno run -A server/main.ts`. */
  command?: [string, ...string[]];
  /** Working directory of the server process. */
  cwd?: string;
  /** Start it with this RLIMIT_NOFILE (soft and hard), via `prlimit`. */
  nofile?: number;
}

/** A running telejob-server process. */
export interface ServerProcess {
  /** The port it listens on (127.0.0.1). */
  port: number;
  /** `127.0.0.1:<port>`. */
  address: string;
  /** The process. */
  child: Deno.ChildProcess;
  /** Every stderr line so far (JSON log lines and messages). */
  lines: string[];
  /** Its data directory (removed by {@linkcode ServerProcess.stop}). */
  dataDir: string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
  /**
   * Resolves with the first JSON log line from line index `from` on that
   * matches; rejects after `timeoutMs` (default 10 s) or when the server exits.
   */
  waitForLog(
    match: (entry: Record<string, unknown>) => boolean,
    from?: number,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  /** Sends `signal` (default SIGTERM), waits for exit, removes the data dir. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Starts `server/main.ts` with the test certificates, `--admin admin`, a
 * fresh data dir and port 0, and resolves once it logs that it listens.
 */
export async function startServer(
  options: StartServerOptions = {},
): Promise<ServerProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "telejob-server-test-" });
  const [program, ...programArgs] = options.command ??
    [Deno.execPath(), "run", "-A", join(REPO, "server", "main.ts")];
  // prlimit sets the limit on itself and execs the server: same pid.
  const prlimit = options.nofile === undefined
    ? []
    : [`--nofile=${options.nofile}:${options.nofile}`, program];
  const child = new Deno.Command(prlimit.length ? "prlimit" : program, {
    args: [
      ...prlimit,
      ...programArgs,
      "--address",
      "127.0.0.1:0",
      "--server-cert",
      join(TESTDATA, "server.crt"),
      "--server-key",
      join(TESTDATA, "server.key"),
      "--client-ca-cert",
      join(TESTDATA, "client-ca.crt"),
      "--data-dir",
      dataDir,
      "--admin",
      "admin",
      ...(options.args ?? []),
    ],
    env: options.env,
    cwd: options.cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();

  const lines: string[] = [];
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => (exited = s));
  let onLine: (() => void) | undefined;
  const lineWaiters = new Set<() => void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    let pending = "";
    for await (const chunk of child.stderr) {
      pending += decoder.decode(chunk, { stream: true });
      const parts = pending.split("\n");
      pending = parts.pop()!;
      lines.push(...parts);
      onLine?.();
      for (const waiter of lineWaiters) waiter();
    }
    if (pending) lines.push(pending);
    onLine?.();
    for (const waiter of lineWaiters) waiter();
  })();

  const parse = (line: string): Record<string, unknown> | undefined => {
    try {
      const value = JSON.parse(line);
      return value && typeof value === "object" ? value : undefined;
    } catch {
      return undefined;
    }
  };

  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => check(true), 60_000);
    function check(timeout = false): void {
      for (const line of lines) {
        const entry = parse(line);
        if (entry?.event === "listening") {
          clearTimeout(timer);
          onLine = undefined;
          resolve(entry.port as number);
          return;
        }
      }
      if (exited || timeout) {
        clearTimeout(timer);
        onLine = undefined;
        reject(
          new Error(
            `telejob-server did not start (${
              exited ? `exit ${exited.code}` : "timeout"
            }):\n${lines.join("\n")}`,
          ),
        );
      }
    }
    onLine = () => check();
    status.then(() => check());
  }).catch(async (error) => {
    if (!exited) child.kill("SIGKILL");
    await status;
    await reading;
    await Deno.remove(dataDir, { recursive: true });
    throw error;
  });

  return {
    port,
    address: `127.0.0.1:${port}`,
    child,
    lines,
    dataDir,
    alive: () => exited === undefined,
    logs: () => lines.map(parse).filter((e) => e !== undefined),
    waitForLog(match, from = 0, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        let scanned = from;
        const done = (): void => {
          clearTimeout(timer);
          lineWaiters.delete(check);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`No matching log line in ${timeoutMs} ms`));
        }, timeoutMs);
        function check(): void {
          for (; scanned < lines.length; scanned++) {
            const entry = parse(lines[scanned]);
            if (entry && match(entry)) {
              done();
              resolve(entry);
              return;
            }
          }
          if (exited) {
            done();
            reject(new Error("The server exited"));
          }
        }
        lineWaiters.add(check);
        check();
      });
    },
    async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
      if (!exited) child.kill(signal);
      const result = await status;
      await reading;
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      return result;
    },
  };
}

/** Client credentials of a test identity, e.g. `client1` or `client-no-cn`. */
export function credentialsFor(name?: string): grpc.ChannelCredentials {
  const ca = testdata("server-ca.crt");
  if (name === undefined) return grpc.credentials.createSsl(Buffer.from(ca));
  return grpc.credentials.createSsl(
    Buffer.from(ca),
    Buffer.from(testdata(`${name}.key`)),
    Buffer.from(testdata(`${name}.crt`)),
  );
}

/**
 * A Telejob client for the test identity `name` (no client certificate when
 * undefined). Connects to `localhost` so the server certificate's SAN
 * matches. Close it with `client.close()`.
 */
export function clientFor(server: ServerProcess, name?: string): TelejobClient {
  return new TelejobClient(
    `localhost:${server.port}`,
    credentialsFor(name),
    // One connection per client: tests about one identity must not share.
    { "grpc.use_local_subchannel_pool": 1 },
  );
}

/** One method of a {@linkcode rawClient}: its path and which sides stream. */
export interface RawMethod {
  /** `/package.Service/Method`. */
  path: string;
  /** Whether the client streams requests. */
  requestStream?: boolean;
  /** Whether the server streams responses. */
  responseStream?: boolean;
}

const rawBytes = (value: Buffer): Buffer => value;

/**
 * A gRPC client on `port` that sends and receives raw message bytes: for
 * requests the generated client would not encode (malformed, out of range)
 * and for services it does not know (health, reflection). Its methods take
 * the names of `methods`; it connects with client1's certificate unless
 * `options.credentials` says otherwise.
 */
export function rawClient(
  port: number,
  methods: Record<string, RawMethod>,
  options: { credentials?: grpc.ChannelCredentials } = {},
): InstanceType<grpc.ServiceClientConstructor> {
  const definition: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const [name, method] of Object.entries(methods)) {
    definition[name] = {
      path: method.path,
      requestStream: method.requestStream ?? false,
      responseStream: method.responseStream ?? false,
      requestSerialize: rawBytes,
      requestDeserialize: rawBytes,
      responseSerialize: rawBytes,
      responseDeserialize: rawBytes,
    };
  }
  const Raw = grpc.makeGenericClientConstructor(definition, "Raw");
  return new Raw(
    `localhost:${port}`,
    options.credentials ?? credentialsFor("client1"),
  );
}

/** A gRPC error as the tests look at it. */
export interface RpcFailure {
  /** Status code name, e.g. `NOT_FOUND`. */
  code: string;
  /** The message the server sent. */
  details: string;
}

type UnaryMethod = "start" | "stop" | "status" | "list";

const REQUESTS: Record<UnaryMethod, { fromPartial(object: never): unknown }> = {
  start: StartRequest,
  stop: StopRequest,
  status: StatusRequest,
  list: ListRequest,
};

/**
 * Calls a unary method and resolves with the response, or rejects with a
 * {@linkcode RpcFailure}-shaped `grpc.ServiceError`.
 */
export function call<R>(
  client: TelejobClient,
  method: UnaryMethod,
  request: unknown,
  deadlineMs = 20_000,
): Promise<R> {
  // Fills in the fields a test leaves out (`{}` for a List): the generated
  // encoders need every field.
  const full = REQUESTS[method].fromPartial(request as never);
  return new Promise((resolve, reject) => {
    // deno-lint-ignore no-explicit-any
    (client as any)[method](
      full,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs },
      (error: grpc.ServiceError | null, response: R) =>
        error ? reject(error) : resolve(response),
    );
  });
}

/** Calls a unary method that must fail; resolves with the code name and message. */
export async function failure(
  client: TelejobClient,
  method: UnaryMethod,
  request: unknown,
): Promise<RpcFailure> {
  try {
    await call(client, method, request);
  } catch (error) {
    const e = error as grpc.ServiceError;
    return { code: grpc.status[e.code], details: e.details };
  }
  throw new Error(`${method} succeeded but was expected to fail`);
}

/** Reads a Logs stream to its end: all bytes, or the failure. */
export async function readLogs(
  client: TelejobClient,
  request: { id: string; follow?: boolean; offset?: number; tail?: number },
): Promise<{ data: Uint8Array } | RpcFailure> {
  const stream = client.logs({
    id: request.id,
    follow: request.follow ?? false,
    offset: request.offset ?? 0,
    tail: request.tail,
  });
  const chunks: Uint8Array[] = [];
  try {
    for await (const message of stream) chunks.push(message.data);
  } catch (error) {
    const e = error as grpc.ServiceError;
    return { code: grpc.status[e.code], details: e.details };
  }
  const data = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.length;
  }
  return { data };
}

/**
 * Waits until the job has finished (its follow stream ends when the job has
 * ended and every byte was sent), then returns its status.
 */
export async function waitFinished(
  client: TelejobClient,
  id: string,
): Promise<Record<string, unknown>> {
  const logs = await readLogs(client, { id, follow: true });
  if ("code" in logs) throw new Error(`Logs of job ${id}: ${logs.details}`);
  const { job } = await call<{ job: Record<string, unknown> }>(
    client,
    "status",
    { id },
  );
  return job;
}

/** Certificate files of one identity: `<dir>/<user>.crt` and `.key`. */
export interface IdentityFiles {
  /** The CA that must have issued the server's certificate. */
  ca: string;
  /** The directory holding the user's certificate and key. */
  dir: string;
  /** The user: the files' name stem. */
  user: string;
}

/**
 * Lists jobs once as the identity in `files` on its own connection and
 * returns `OK <number of jobs>`, or the gRPC code name of the failure.
 */
export async function listWithFiles(
  server: ServerProcess,
  files: IdentityFiles,
): Promise<string> {
  const read = (path: string) => Buffer.from(Deno.readFileSync(path));
  const client = new TelejobClient(
    `localhost:${server.port}`,
    grpc.credentials.createSsl(
      read(files.ca),
      read(join(files.dir, `${files.user}.key`)),
      read(join(files.dir, `${files.user}.crt`)),
    ),
    { "grpc.use_local_subchannel_pool": 1 },
  );
  try {
    const { jobs } = await call<{ jobs: unknown[] }>(
      client,
      "list",
      {},
      10_000,
    );
    return `OK ${jobs.length}`;
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code];
  } finally {
    client.close();
  }
}
