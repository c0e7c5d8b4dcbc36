/**
 * The `telejob.v1.Telejob` gRPC service: authenticates each call by its
 * client certificate, checks the request's shape, calls the job engine and
 * maps its answers and errors onto gRPC. One JSON log line per call.
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { Buffer as NodeBuffer } from "node:buffer";
type Buffer = NodeBuffer;
import {
  type Job,
  JobState,
  type Limits as ProtoLimits,
  ListRequest,
  type ListResponse,
  LogsRequest,
  type LogsResponse,
  StartRequest,
  type StartResponse,
  StatusRequest,
  type StatusResponse,
  StopRequest,
  type StopResponse,
  type TelejobServer,
  TelejobService,
} from "../proto/gen/telejob/v1/telejob.ts";
import type { IoLimit, Limits } from "../cgroup/mod.ts";
import type { JobEngine, JobInfo } from "./jobs/mod.ts";
import { JobError } from "./jobs/errors.ts";
import type { Logger } from "./log.ts";
import { BudgetError, isFdExhaustion } from "./budgets.ts";
import type { ClientVerifier } from "./tls.ts";
import { userOfCall } from "./tls.ts";
import { type NumberFields, unsafeNumberField } from "./wire_numbers.ts";
import { buildPage, checkList } from "./list_page.ts";

/** The engine methods the service calls. */
export type Engine = Pick<
  JobEngine,
  "start" | "stop" | "status" | "list" | "logs"
>;

/** Largest request message the server accepts (grpc.max_receive_message_length). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/**
 * Largest `data` of one Logs message. Small enough that the bytes a stream
 * may have written and not yet sent ({@linkcode MAX_LOG_BYTES_IN_FLIGHT})
 * hold a few messages, large enough that the per-message cost stays small.
 */
export const MAX_LOG_CHUNK_BYTES = 32 * 1024;
/**
 * Most bytes one Logs stream has handed to grpc-js and HTTP/2 and not yet
 * seen sent. grpc-js's own limit is 16 messages (its writable stream's
 * highWaterMark counts messages, not bytes), and a reader that never opens
 * its HTTP/2 window makes them stay: 16 × 256 KiB per stalled reader before.
 * With the engine's read buffer (256 KiB) this bounds a stalled reader's
 * memory to under 512 KiB (README "Resource budgets").
 */
export const MAX_LOG_BYTES_IN_FLIGHT = 2 * MAX_LOG_CHUNK_BYTES;
/** Linux refuses longer single arguments or env entries (MAX_ARG_STRLEN). */
export const MAX_ARG_BYTES = 128 * 1024;
/** Most arguments a job may have. */
export const MAX_ARGS = 10_000;
/** Most environment entries a job may add. */
export const MAX_ENV = 1_000;
/** Most bytes of command, arguments and env together (ARG_MAX is 2 MiB here). */
export const MAX_EXEC_BYTES = 1024 * 1024;
/** Longest grace period `Stop` accepts. */
export const MAX_GRACE_MS = 24 * 60 * 60 * 1000;

/** A request the service refuses before it reaches the engine. */
class RequestError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

function invalid(field: string, message: string): RequestError {
  return new RequestError(grpc.status.INVALID_ARGUMENT, `${field}: ${message}`);
}

const DECODE_ERROR = Symbol("decodeError");
type Decoded<T> = T | { [DECODE_ERROR]: string };

/**
 * Wraps a generated decoder so that a malformed request (or a 64-bit number
 * too large for JavaScript) becomes INVALID_ARGUMENT with the reason,
 * instead of grpc-js's generic INTERNAL.
 */
function tolerantDecoder<T>(
  decode: (buffer: Buffer) => T,
  numbers: NumberFields = {},
): (buffer: Buffer) => Decoded<T> {
  return (buffer) => {
    try {
      return decode(buffer);
    } catch (error) {
      const field = unsafeNumberField(buffer, numbers);
      return {
        [DECODE_ERROR]: field !== undefined
          ? `${field}: the number is out of range; give at most ${Number.MAX_SAFE_INTEGER}`
          : `Malformed request: ${
            error instanceof Error ? error.message : String(error)
          }`,
      };
    }
  };
}

// The 64-bit number fields of each request (names as in the proto).
const LIMITS_NUMBERS: NumberFields = {
  2: "memory_bytes",
  3: "pids",
  4: ["io", { 3: "rbps", 4: "wbps", 5: "riops", 6: "wiops" }],
};
const START_NUMBERS: NumberFields = { 5: ["limits", LIMITS_NUMBERS] };
const STOP_NUMBERS: NumberFields = { 2: ["grace", { 1: "seconds" }] };
const LOGS_NUMBERS: NumberFields = { 3: "offset", 4: "tail" };

function decoded<T>(request: Decoded<T>): T {
  if (request && typeof request === "object" && DECODE_ERROR in request) {
    throw new RequestError(
      grpc.status.INVALID_ARGUMENT,
      request[DECODE_ERROR],
    );
  }
  return request as T;
}

/** The generated service definition with decoders that never throw. */
export const telejobServiceDefinition = {
  start: {
    ...TelejobService.start,
    requestDeserialize: tolerantDecoder(StartRequest.decode, START_NUMBERS),
  },
  stop: {
    ...TelejobService.stop,
    requestDeserialize: tolerantDecoder(StopRequest.decode, STOP_NUMBERS),
  },
  status: {
    ...TelejobService.status,
    requestDeserialize: tolerantDecoder(StatusRequest.decode),
  },
  list: {
    ...TelejobService.list,
    requestDeserialize: tolerantDecoder(ListRequest.decode),
  },
  logs: {
    ...TelejobService.logs,
    requestDeserialize: tolerantDecoder(LogsRequest.decode, LOGS_NUMBERS),
    responseSerialize: (value: LogsResponse | EncodedLogs): Buffer =>
      value instanceof EncodedLogs ? value.bytes : encodeLogsResponse(value),
  },
} as unknown as typeof TelejobService;

/**
 * A LogsResponse encoded when it was written: the bytes are copied out at
 * once, so the engine may read the next chunk into the same buffer while
 * grpc-js still queues this message.
 */
class EncodedLogs {
  constructor(readonly bytes: Buffer) {}
}

/**
 * Encodes `LogsResponse{data}` with one allocation and one copy: the field
 * tag, the varint length, the bytes. The generated encoder copies twice
 * (writer, then Buffer.from), which costs on the hottest path of the server.
 */
export function encodeLogsResponse(value: LogsResponse): Buffer {
  const data = value.data;
  if (data.length === 0) return NodeBuffer.alloc(0);
  let varint = 1;
  for (let n = data.length; n >= 0x80; n = Math.floor(n / 0x80)) varint++;
  const out = NodeBuffer.allocUnsafe(1 + varint + data.length);
  out[0] = 0x0a; // field 1, length-delimited
  let offset = 1;
  let n = data.length;
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[offset++] = n;
  out.set(data, offset);
  return out;
}

// ---------------------------------------------------------------------------
// Request validation

const ID_PATTERN = /^[0-9]{1,19}$/;

function checkId(id: string): string {
  if (id === "") {
    throw invalid("id", "missing job id; pass the id that start printed");
  }
  if (!ID_PATTERN.test(id)) {
    const shown = id.length > 40
      ? `${JSON.stringify(id.slice(0, 40))}…`
      : JSON.stringify(id);
    throw invalid(
      "id",
      `${shown} is not a job id; job ids are decimal numbers such as 42`,
    );
  }
  return id;
}

function checkString(field: string, value: string): void {
  if (value.includes("\0")) {
    throw invalid(
      field,
      "contains a NUL byte, which a command line cannot carry",
    );
  }
  const bytes = utf8Length(value);
  if (bytes > MAX_ARG_BYTES) {
    throw invalid(
      field,
      `is ${bytes} bytes long; Linux allows at most ${MAX_ARG_BYTES} bytes per argument or env entry`,
    );
  }
}

function utf8Length(value: string): number {
  // Exact for the limits above without allocating the encoding.
  let bytes = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Converts the API's per-job limits (0 means "the server's default") to the
 * engine's. Ranges and ceilings are the engine's business (it knows the
 * server's limits and the host); here only what the wire format cannot
 * express for it: a negative or non-finite CPU, and duplicate devices.
 */
function toEngineLimits(limits: ProtoLimits | undefined): Limits | undefined {
  if (!limits) return undefined;
  const out: Limits = {};
  if (limits.cpu !== 0) {
    if (!Number.isFinite(limits.cpu) || limits.cpu < 0) {
      throw invalid(
        "limits.cpu",
        `${limits.cpu} is not a number of CPUs; use 0 for the server's default or a positive number like 0.5`,
      );
    }
    out.cpu = limits.cpu;
  }
  if (limits.memoryBytes !== 0) out.memoryBytes = limits.memoryBytes;
  if (limits.pids !== 0) out.pids = limits.pids;
  if (limits.io.length > 0) {
    const seen = new Set<string>();
    out.io = limits.io.map((io, i): IoLimit => {
      const field = `limits.io[${i}]`;
      const device = `${io.major}:${io.minor}`;
      if (seen.has(device)) {
        throw invalid(
          field,
          `device ${device} appears twice; give one entry per device`,
        );
      }
      seen.add(device);
      const entry: IoLimit = { major: io.major, minor: io.minor };
      for (const key of ["rbps", "wbps", "riops", "wiops"] as const) {
        if (io[key] !== 0) entry[key] = io[key];
      }
      if (Object.keys(entry).length === 2) {
        throw invalid(
          field,
          `device ${device} has no rate; set rbps, wbps, riops or wiops`,
        );
      }
      return entry;
    });
  }
  return out;
}

function checkStart(request: StartRequest): Parameters<Engine["start"]>[1] {
  if (request.command === "") {
    throw invalid(
      "command",
      "missing command; pass the program to run, e.g. sleep",
    );
  }
  checkString("command", request.command);
  if (request.args.length > MAX_ARGS) {
    throw invalid(
      "args",
      `${request.args.length} arguments given; at most ${MAX_ARGS} are allowed`,
    );
  }
  if (request.env.length > MAX_ENV) {
    throw invalid(
      "env",
      `${request.env.length} entries given; at most ${MAX_ENV} are allowed`,
    );
  }
  // Each string plus its NUL and its pointer in argv/envp, as exec counts it.
  let total = utf8Length(request.command) + 9;
  request.args.forEach((arg, i) => {
    checkString(`args[${i}]`, arg);
    total += utf8Length(arg) + 9;
  });
  request.env.forEach((entry, i) => {
    checkString(`env[${i}]`, entry);
    const eq = entry.indexOf("=");
    if (eq <= 0) {
      throw invalid(
        `env[${i}]`,
        `${
          JSON.stringify(entry.slice(0, 40))
        } is not KEY=VALUE with a non-empty KEY`,
      );
    }
    total += utf8Length(entry) + 9;
  });
  if (total > MAX_EXEC_BYTES) {
    throw invalid(
      "args",
      `command, arguments and env take ${total} bytes; at most ${MAX_EXEC_BYTES} are allowed`,
    );
  }
  if (request.cwd !== "") {
    checkString("cwd", request.cwd);
    if (!request.cwd.startsWith("/")) {
      throw invalid(
        "cwd",
        `${JSON.stringify(request.cwd)} is not an absolute path`,
      );
    }
  }
  return {
    command: request.command,
    args: request.args,
    env: request.env,
    cwd: request.cwd === "" ? undefined : request.cwd,
    limits: toEngineLimits(request.limits),
    user: checkUser(request.user ?? ""),
  };
}

function checkUser(user: string): string | undefined {
  if (user === "") return undefined;
  if (!/^[A-Za-z0-9_.][A-Za-z0-9_.@-]{0,63}\$?$/.test(user)) {
    throw invalid(
      "user",
      `${
        JSON.stringify(user.slice(0, 64))
      } is not a login name: use letters, digits, ".", "_", "-" and "@" (at most 64)`,
    );
  }
  return user;
}

function checkGrace(request: StopRequest): number | undefined {
  const grace = request.grace;
  if (!grace) return undefined;
  const { seconds, nanos } = grace;
  if (
    !Number.isInteger(seconds) || !Number.isInteger(nanos) ||
    nanos <= -1e9 || nanos >= 1e9 || (seconds > 0 && nanos < 0) ||
    (seconds < 0 && nanos > 0)
  ) {
    throw invalid("grace", "is not a valid duration");
  }
  const ms = seconds * 1000 + nanos / 1e6;
  if (ms < 0) {
    throw invalid("grace", `${ms / 1000}s is negative; use 0 to kill at once`);
  }
  if (ms > MAX_GRACE_MS) {
    throw invalid(
      "grace",
      `${seconds}s is longer than the maximum of ${MAX_GRACE_MS / 1000}s`,
    );
  }
  return Math.ceil(ms);
}

function checkLogs(request: LogsRequest): {
  follow: boolean;
  offset?: number;
  tail?: number;
} {
  // The engine checks offset against the output cap; here only what a
  // number from the wire can hold.
  for (
    const [field, value] of [["offset", request.offset], [
      "tail",
      request.tail,
    ]] as const
  ) {
    if (
      value !== undefined &&
      (!Number.isSafeInteger(value) || value < 0)
    ) {
      throw invalid(
        field,
        `${value} is out of range; give a whole number of bytes from 0 to ${Number.MAX_SAFE_INTEGER}`,
      );
    }
  }
  return {
    follow: request.follow,
    offset: request.offset === 0 ? undefined : request.offset,
    tail: request.tail,
  };
}

// ---------------------------------------------------------------------------
// Responses

const STATE: Record<JobInfo["state"], JobState> = {
  running: JobState.JOB_STATE_RUNNING,
  finished: JobState.JOB_STATE_FINISHED,
};

function toProtoLimits(limits: Limits): ProtoLimits {
  return {
    cpu: limits.cpu ?? 0,
    memoryBytes: limits.memoryBytes ?? 0,
    pids: limits.pids ?? 0,
    io: (limits.io ?? []).map((io) => ({
      major: io.major,
      minor: io.minor,
      rbps: io.rbps ?? 0,
      wbps: io.wbps ?? 0,
      riops: io.riops ?? 0,
      wiops: io.wiops ?? 0,
    })),
  };
}

/** Converts the engine's job record to the API's. */
export function toProtoJob(job: JobInfo): Job {
  return {
    id: job.id,
    owner: job.owner,
    command: job.command,
    args: job.args,
    cwd: job.cwd,
    state: STATE[job.state] ?? JobState.JOB_STATE_UNSPECIFIED,
    startedAt: job.startedAt,
    endedAt: job.endedAt,
    exitCode: job.exitCode,
    signal: job.signal ?? "",
    oomKilled: job.oomKilled,
    stopped: job.stopped,
    stoppedBy: job.stoppedBy ?? "",
    lostInRestart: job.lostInRestart,
    outputLimitReached: job.outputLimitReached,
    limits: toProtoLimits(job.limits),
    usage: {
      cpuUsec: job.usage.cpuUsec,
      memoryPeakBytes: job.usage.memoryPeakBytes,
      ioReadBytes: job.usage.ioReadBytes,
      ioWriteBytes: job.usage.ioWriteBytes,
    },
    outputBytes: job.outputBytes,
    account: job.account,
    uid: job.uid,
    startError: job.startError ?? "",
  };
}

// ---------------------------------------------------------------------------
// Errors

const JOB_ERROR_STATUS: Record<JobError["code"], grpc.status> = {
  failed_precondition: grpc.status.FAILED_PRECONDITION,
  invalid_argument: grpc.status.INVALID_ARGUMENT,
  not_found: grpc.status.NOT_FOUND,
  permission_denied: grpc.status.PERMISSION_DENIED,
  resource_exhausted: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
};

/** A gRPC status for the client plus, for internal errors, detail for the log. */
export interface MappedError {
  /** The status code sent. */
  code: grpc.status;
  /** The message sent to the client. */
  details: string;
  /** What the operator sees in the log (never sent). */
  logDetail?: string;
}

/**
 * Maps an error from validation or the engine to what the client gets.
 * Anything unexpected becomes INTERNAL with a reference to the log line.
 */
export function mapError(error: unknown): MappedError {
  if (error instanceof RequestError) {
    return { code: error.code, details: error.message };
  }
  if (error instanceof BudgetError) {
    return { code: grpc.status.RESOURCE_EXHAUSTED, details: error.message };
  }
  if (isFdExhaustion(error)) {
    // Before anything reads error.stack, which panics Deno at EMFILE
    // (see isFdExhaustion).
    return {
      code: grpc.status.RESOURCE_EXHAUSTED,
      details:
        "The server is out of file descriptors; retry later (its operator can raise LimitNOFILE or lower the connection budgets)",
      logDetail: `out of file descriptors: ${
        (error as { message?: string }).message
      }`,
    };
  }
  if (error instanceof JobError) {
    const code = JOB_ERROR_STATUS[error.code];
    if (code !== undefined) {
      const details = error.code === "invalid_argument" && error.field &&
          !error.message.startsWith(`${error.field}:`)
        ? `${error.field}: ${error.message}`
        : error.message;
      return { code, details };
    }
  }
  const reference = crypto.randomUUID().slice(0, 8);
  const detail = error instanceof Error
    ? (error.stack ?? `${error.name}: ${error.message}`)
    : String(error);
  return {
    code: grpc.status.INTERNAL,
    details:
      `Internal server error (reference ${reference}); the server log has the details, retry or report it`,
    logDetail: `[${reference}] ${detail}`,
  };
}

function statusName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

// ---------------------------------------------------------------------------
// The service

/** Options of {@linkcode createTelejobService}. */
export interface ServiceOptions {
  /** Verifies the client certificate of each call. */
  verifier: ClientVerifier;
  /** Receives one line per call. */
  logger: Logger;
  /**
   * Admits a call of `user` from `peer` under the resource budgets: returns
   * the function that ends it, or throws `BudgetError`. Default: no budgets.
   */
  admitCall?: (
    peer: string,
    user: string,
    options: { opensFile?: boolean; startsJob?: boolean },
  ) => () => void;
}

/** The service plus a way to end the log streams it is serving. */
export interface TelejobServiceHandle {
  /** The handlers to add with `server.addService(telejobServiceDefinition, …)`. */
  implementation: TelejobServer;
  /** Ends every open Logs stream with UNAVAILABLE (used at shutdown). */
  cancelStreams(reason: string): void;
  /** Number of Logs streams being served. */
  readonly openStreams: number;
}

interface CallContext {
  user: string;
  jobId?: string;
  /** When the client certificate expires. */
  notAfter?: Date;
  /** Ends the call's admission (see ServiceOptions.admitCall). */
  release?: () => void;
}

/** Why the service ended a Logs stream itself, with the status to send. */
class StreamEnd extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

/** setTimeout's longest delay; longer ones are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>;

/**
 * Creates the handlers of `telejob.v1.Telejob` over `engine`: the user is
 * the verified common name of the client certificate.
 */
export function createTelejobService(
  engine: Engine,
  options: ServiceOptions,
): TelejobServiceHandle {
  const { verifier, logger } = options;
  const streams = new Set<AbortController>();

  function authenticate(
    call: AnyCall,
    context: CallContext,
    admit: { opensFile?: boolean; startsJob?: boolean } = {},
  ): string {
    const verdict = userOfCall(call, verifier);
    if (!verdict.ok) {
      throw new RequestError(
        grpc.status.UNAUTHENTICATED,
        `Client certificate refused: ${verdict.reason}; use a certificate issued by the server's client CA for client authentication`,
      );
    }
    context.user = verdict.user;
    context.notAfter = verdict.notAfter;
    context.release = options.admitCall?.(call.getPeer(), verdict.user, admit);
    return verdict.user;
  }

  function log(
    method: string,
    context: CallContext,
    started: number,
    error?: MappedError,
  ): void {
    logger.rpc({
      user: context.user,
      method,
      jobId: context.jobId,
      outcome: statusName(error?.code ?? grpc.status.OK),
      durationMs: performance.now() - started,
      detail: error?.logDetail ??
        (error && error.code !== grpc.status.NOT_FOUND
          ? error.details
          : undefined),
    });
  }

  function unary<Req, Res>(
    method: string,
    handle: (user: string, request: Req, context: CallContext) => Promise<Res>,
    admit: { startsJob?: boolean } = {},
  ): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const started = performance.now();
      const context: CallContext = { user: "" };
      (async () => {
        const user = authenticate(call as AnyCall, context, admit);
        return await handle(
          user,
          decoded(call.request as Decoded<Req>),
          context,
        );
      })().then(
        (response) => {
          context.release?.();
          log(method, context, started);
          callback(null, response);
        },
        (error) => {
          context.release?.();
          const mapped = mapError(error);
          log(method, context, started, mapped);
          callback({ code: mapped.code, details: mapped.details });
        },
      );
    };
  }

  const implementation: TelejobServer = {
    start: unary<StartRequest, StartResponse>(
      "Start",
      async (user, request, context) => {
        const job = await engine.start(user, checkStart(request));
        context.jobId = job.id;
        return { id: job.id };
      },
      { startsJob: true },
    ),
    stop: unary<StopRequest, StopResponse>(
      "Stop",
      async (user, request, context) => {
        context.jobId = checkId(request.id);
        const graceMs = checkGrace(request);
        const job = await engine.stop(
          user,
          request.id,
          graceMs === undefined ? {} : { graceMs },
        );
        return { job: toProtoJob(job) };
      },
    ),
    status: unary<StatusRequest, StatusResponse>(
      "Status",
      async (user, request, context) => {
        context.jobId = checkId(request.id);
        return { job: toProtoJob(await engine.status(user, request.id)) };
      },
    ),
    list: unary<ListRequest, ListResponse>("List", async (user, request) => {
      const query = checkList(request);
      // One more than the page, to know whether another page follows.
      const jobs = await engine.list(user, {
        after: query.after,
        limit: query.pageSize + 1,
      });
      return buildPage(jobs.map(toProtoJob), query);
    }),
    logs: (call: grpc.ServerWritableStream<LogsRequest, LogsResponse>) => {
      const started = performance.now();
      const context: CallContext = { user: "" };
      const abort = new AbortController();
      streams.add(abort);
      const onCancel = (): void => abort.abort(new Error("client cancelled"));
      call.on("cancelled", onCancel);
      let expiry: ReturnType<typeof setTimeout> | undefined;
      (async () => {
        const user = authenticate(call as AnyCall, context, {
          opensFile: true,
        });
        // The certificate was valid when the stream began; the stream must
        // not outlive it.
        const armExpiry = (): void => {
          if (!context.notAfter) return;
          const left = context.notAfter.getTime() - Date.now() + 1;
          if (left > 0) {
            expiry = setTimeout(armExpiry, Math.min(left, MAX_TIMER_MS));
            return;
          }
          abort.abort(
            new StreamEnd(
              grpc.status.UNAUTHENTICATED,
              "Client certificate expired during the stream; renew it and reconnect",
            ),
          );
        };
        armExpiry();
        const request = decoded(call.request as Decoded<LogsRequest>);
        context.jobId = checkId(request.id);
        const options = checkLogs(request);
        const chunks = engine.logs(user, request.id, {
          ...options,
          // pump() copies each chunk out before it asks for the next.
          reuseBuffer: true,
          signal: abort.signal,
        });
        await pump(call, chunks, abort.signal);
      })().then(
        () => {
          if (call.cancelled) {
            log("Logs", context, started, {
              code: grpc.status.CANCELLED,
              details: "client cancelled",
            });
          } else if (abort.signal.aborted) {
            const reason = abort.signal.reason;
            const details = String(reason?.message ?? reason);
            const code = reason instanceof StreamEnd
              ? reason.code
              : grpc.status.UNAVAILABLE;
            log("Logs", context, started, { code, details });
            call.emit("error", { code, details });
          } else {
            log("Logs", context, started);
            call.end();
          }
        },
        (error) => {
          const mapped = call.cancelled
            ? { code: grpc.status.CANCELLED, details: "client cancelled" }
            : mapError(error);
          log("Logs", context, started, mapped);
          if (!call.cancelled) {
            call.emit("error", { code: mapped.code, details: mapped.details });
          }
        },
      ).finally(() => {
        clearTimeout(expiry);
        context.release?.();
        streams.delete(abort);
        call.off("cancelled", onCancel);
      });
    },
  };

  return {
    implementation,
    cancelStreams(reason: string): void {
      for (const abort of streams) abort.abort(new Error(reason));
    },
    get openStreams(): number {
      return streams.size;
    },
  };
}

/**
 * Writes `chunks` to the call in messages of at most
 * {@linkcode MAX_LOG_CHUNK_BYTES}, with at most
 * {@linkcode MAX_LOG_BYTES_IN_FLIGHT} bytes written and not yet sent: a
 * slow or stalled client holds back reading instead of growing server
 * memory. (grpc-js's 'drain' comes only after 16 messages, whatever their
 * size.) Stops when `signal` aborts; leaving the loop early closes the
 * engine's iterator.
 */
async function pump(
  call: grpc.ServerWritableStream<LogsRequest, LogsResponse>,
  chunks: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): Promise<void> {
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const sent = (bytes: number) => (): void => {
    inFlight -= bytes;
    wake?.();
  };
  const room = (): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        if (
          inFlight > MAX_LOG_BYTES_IN_FLIGHT - MAX_LOG_CHUNK_BYTES &&
          !signal.aborted && !call.destroyed
        ) return;
        wake = undefined;
        call.off("close", done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      wake = done;
      call.on("close", done);
      signal.addEventListener("abort", done);
    });
  for await (const chunk of chunks) {
    for (let offset = 0; offset < chunk.length; offset += MAX_LOG_CHUNK_BYTES) {
      if (inFlight > MAX_LOG_BYTES_IN_FLIGHT - MAX_LOG_CHUNK_BYTES) {
        await room();
      }
      if (signal.aborted || call.destroyed) return;
      const data = chunk.subarray(offset, offset + MAX_LOG_CHUNK_BYTES);
      inFlight += data.length;
      const message = new EncodedLogs(encodeLogsResponse({ data }));
      call.write(message as unknown as LogsResponse, sent(data.length));
    }
    if (signal.aborted) return;
  }
}
