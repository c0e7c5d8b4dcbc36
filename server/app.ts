/**
 * Assembles the gRPC server: mutual TLS 1.3 with our client-certificate
 * policy on every connection, the GOAWAY crash protections (on every HTTP/2
 * session, and a shutdown that sends no GOAWAY), the resource budgets
 * (`budgets.ts`, `admission.ts`), the Telejob service, the standard health
 * service and server reflection (so `grpcurl` works with a client
 * certificate).
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { TLSSocket } from "node:tls";
import type { ListenAddress } from "./config.ts";
import { Admission } from "./admission.ts";
import {
  type BudgetConfig,
  DEFAULT_BUDGETS,
  listenBacklog,
} from "./budgets.ts";
import {
  ConnectionTracker,
  goawayProtectionEnabled,
  hookHttp2Servers,
  protectSession,
} from "../compat/mod.ts";
import type { Logger } from "./log.ts";
import { addReflection } from "./reflection.ts";
import { createTelejobService, type Engine } from "./service.ts";
import { MAX_REQUEST_BYTES, telejobServiceDefinition } from "./codec.ts";
import { ClientVerifier, createServerCredentials } from "./tls.ts";
import type { TlsMaterial } from "./pem.ts";
import { versionInterceptor } from "./version_header.ts";

/** Fully qualified name of our service, as health and reflection know it. */
export const SERVICE_NAME = "telejob.v1.Telejob";

/** Options of {@linkcode startTelejobServer}. */
export interface AppOptions {
  /** Where to listen. */
  address: ListenAddress;
  /** The server's certificate, key and client CA. */
  tls: TlsMaterial;
  /** Receives RPC lines and events. */
  logger: Logger;
  /** Resource budgets (default {@linkcode DEFAULT_BUDGETS}). */
  budgets?: BudgetConfig;
}

/** A listening server. */
export interface RunningServer {
  /** The bound TCP port (useful with port 0). */
  readonly port: number;
  /**
   * Graceful shutdown: marks health NOT_SERVING, refuses new connections,
   * ends open log streams with UNAVAILABLE and waits for calls in flight, at
   * most `timeoutMs` (default 5 s) before closing what is left. Connections
   * are closed without HTTP/2 GOAWAY, which can crash Deno clients (see
   * `compat/connections.ts`).
   */
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
}

function formatAddress({ host, port }: ListenAddress): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Starts the gRPC server for `engine` and resolves once it listens. */
export async function startTelejobServer(
  engine: Engine,
  options: AppOptions,
): Promise<RunningServer> {
  const { logger } = options;
  const verifier = new ClientVerifier(options.tls.clientCaCerts);
  const budgets = options.budgets ?? DEFAULT_BUDGETS;
  const admission = new Admission({ budgets, logger });
  const server = new grpc.Server({
    "grpc.max_receive_message_length": MAX_REQUEST_BYTES,
    "grpc.max_concurrent_streams": budgets.maxStreamsPerConnection,
    // A stuck client must not pin a session (and its memory) forever.
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    interceptors: [versionInterceptor],
  });

  const protectGoaway = goawayProtectionEnabled();
  if (!protectGoaway) {
    logger.event("goaway_protection_disabled", {
      warning: "a client sending GOAWAY can crash this server",
    });
  }
  const connections = new ConnectionTracker();
  hookHttp2Servers(server, {
    backlog: listenBacklog(budgets.fdReserve),
    connection(socket): void {
      admission.connection(socket);
    },
    error(error): void {
      logger.event("listener_error", { reason: error.message });
    },
    secureConnection(socket: TLSSocket): void {
      admission.secured(socket);
      if (connections.draining) {
        socket.destroy();
        return;
      }
      const peer = socket.getPeerCertificate();
      const verdict = socket.authorized && peer?.raw
        ? verifier.verify(peer.raw)
        : { ok: false as const, reason: "no verified client certificate" };
      if (!verdict.ok) {
        logger.event("connection_refused", {
          remote: `${socket.remoteAddress}:${socket.remotePort}`,
          reason: verdict.reason,
        });
        socket.destroy();
        return;
      }
      connections.addSocket(socket);
    },
    session(session): void {
      if (protectGoaway) protectSession(session);
      connections.addSession(session);
    },
    tlsClientError(error, socket): void {
      // Deno's TLS socket has no address once the handshake failed.
      const remote = socket?.remoteAddress
        ? { remote: `${socket.remoteAddress}:${socket.remotePort}` }
        : {};
      // A flood of broken handshakes must not flood the log too.
      admission.logLimited("tls_handshake_failed", error.message, remote);
    },
  });

  const service = createTelejobService(engine, {
    verifier,
    logger,
    admitCall: (peer, user, admitOptions) =>
      admission.admitCall(peer, user, admitOptions),
  });
  const SHUTDOWN_REASON = "Server shutting down; retry when it is back";
  let stopping = false;
  const logs = service.implementation.logs;
  const implementation: typeof service.implementation = {
    ...service.implementation,
    logs(call): void {
      logs(call);
      // The connections stay open while they drain (no GOAWAY, see
      // compat/connections.ts), so a follower can still start; it ends at once.
      if (stopping) service.cancelStreams(SHUTDOWN_REASON);
    },
  };
  server.addService(telejobServiceDefinition, implementation);

  const health = new HealthImplementation({
    "": "SERVING",
    [SERVICE_NAME]: "SERVING",
  });
  health.addToServer(server);

  // Reflection describes our API and the health service, so grpcurl and
  // buf curl can call both without a copy of the protos.
  addReflection(server);

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      formatAddress(options.address),
      createServerCredentials(options.tls),
      (error, port) => error ? reject(error) : resolve(port),
    );
  });

  let shuttingDown: Promise<void> | undefined;
  return {
    port,
    shutdown(shutdownOptions = {}): Promise<void> {
      shuttingDown ??= (async () => {
        health.setStatus("", "NOT_SERVING");
        health.setStatus(SERVICE_NAME, "NOT_SERVING");
        const timeoutMs = shutdownOptions.timeoutMs ?? 5_000;
        // Not grpc-js's tryShutdown first: it sends GOAWAY on every
        // connection, which can crash Deno clients (see compat/connections.ts).
        // The connections are closed without it, then tryShutdown only
        // has the listener left to close.
        stopping = true;
        const draining = connections.drain({ timeoutMs });
        service.cancelStreams(SHUTDOWN_REASON);
        const drained = await draining;
        if (drained.forced > 0) {
          logger.event("shutdown_forced", {
            reason: `calls still open after ${timeoutMs} ms`,
            connections: drained.forced,
          });
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, timeoutMs);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      })();
      return shuttingDown;
    },
  };
}
