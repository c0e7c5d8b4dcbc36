/**
 * The `telejob.v1.Telejob` gRPC service: authenticates each call by its
 * client certificate, checks the request's shape, calls the job engine and
 * maps its answers and errors onto gRPC. One JSON log line per call.
 *
 * Beside it: `codec.ts` (the tolerant decoders and the service definition
 * to register), `proto_convert.ts` (engine records to API messages),
 * `error_map.ts` (errors to gRPC statuses), `logs_stream.ts` (the Logs
 * stream's bounded writer) and `request_checks.ts` (the request checks,
 * over the shared rules of `common/validate.ts`).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import {
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
import {
  checkGrace,
  checkId,
  checkLogs,
  checkStart,
} from "./request_checks.ts";

/** The engine methods the service calls. */
export type Engine = Pick<
  JobEngine,
  "start" | "stop" | "status" | "list" | "logs"
>;

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
