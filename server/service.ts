/**
 * The `telejob.v1.Telejob` gRPC service: authenticates each call by its
 * client certificate, checks the request's shape, calls the job engine and
 * maps its answers and errors onto gRPC. One JSON log line per call.
 *
 * Beside it: `codec.ts` (the tolerant decoders and the service definition
 * to register), `proto_convert.ts` (engine records to API messages),
 * `error_map.ts` (errors to gRPC statuses) and `logs_stream.ts` (the Logs
 * stream's bounded writer).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
  type Limits as ProtoLimits,
  type ListRequest,
  type ListResponse,
  type LogsRequest,
  type LogsResponse,
  type StartRequest,
  type StartResponse,
  type StatusRequest,
  type StatusResponse,
  type StopRequest,
  type StopResponse,
  type TelejobServer,
} from "../proto/gen/telejob/v1/telejob.ts";
import type { IoLimit, Limits } from "../cgroup/mod.ts";
import type { JobEngine } from "./jobs/mod.ts";
import type { Logger } from "./log.ts";
import type { ClientVerifier } from "./tls.ts";
import { userOfCall } from "./tls.ts";
import { buildPage, checkList } from "./list_page.ts";
import { type Decoded, decoded } from "./codec.ts";
import {
  mapError,
  type MappedError,
  RequestError,
  statusName,
} from "./error_map.ts";
import { toProtoJob } from "./proto_convert.ts";
import { pump } from "./logs_stream.ts";

/** The engine methods the service calls. */
export type Engine = Pick<
  JobEngine,
  "start" | "stop" | "status" | "list" | "logs"
>;

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

function invalid(field: string, message: string): RequestError {
  return new RequestError(grpc.status.INVALID_ARGUMENT, `${field}: ${message}`);
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
