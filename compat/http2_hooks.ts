/**
 * grpc-js workaround: reaches the http2 server grpc-js creates privately, to
 * add the hooks the server's protections need (connection budgets, the
 * handshake deadline, the GOAWAY guard, the listen backlog). Listed with its
 * removal condition in `compat/mod.ts`.
 * @module
 */
import type { Http2SecureServer, ServerHttp2Session } from "node:http2";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import type * as grpc from "@grpc/grpc-js";
import { pinPeerCertificate } from "./peer_certificate.ts";

/** Hooks run on each http2 server grpc-js creates (see {@linkcode hookHttp2Servers}). */
export interface Http2Hooks {
  /** A TCP connection was accepted, before its TLS handshake. */
  connection?: (socket: Socket) => void;
  /** The listener reported an error (accept failed). */
  error?: (error: Error) => void;
  /** Listen backlog (the kernel's queue of connections not yet accepted). */
  backlog?: number;
  /** A TLS connection finished its handshake; destroy it to refuse it. */
  secureConnection?: (socket: TLSSocket) => void;
  /** A new HTTP/2 session started. */
  session?: (session: ServerHttp2Session) => void;
  /** A TLS handshake failed. */
  tlsClientError?: (error: Error, socket: TLSSocket) => void;
}

/**
 * Installs `hooks` on every http2 server that `server` creates from now on
 * (call before `bindAsync`). grpc-js creates its http2 server in the private
 * method `createHttp2Server`; we wrap it on this instance only. The pinned
 * grpc-js version (deno.json) and the server tests keep this honest: if the
 * method disappears, this throws at start-up instead of silently skipping the
 * client-certificate and GOAWAY protections. Each connection's peer
 * certificate is also pinned (`pinPeerCertificate`).
 */
export function hookHttp2Servers(server: grpc.Server, hooks: Http2Hooks): void {
  const target = server as unknown as {
    createHttp2Server?: (
      credentials: grpc.ServerCredentials,
    ) => Http2SecureServer;
  };
  const original = target.createHttp2Server;
  if (typeof original !== "function") {
    throw new Error(
      "grpc-js has no createHttp2Server method: this grpc-js version is not supported; use the version pinned in deno.json",
    );
  }
  target.createHttp2Server = (credentials) => {
    const http2Server = original.call(server, credentials);
    if (hooks.secureConnection) {
      // Prepended: refuse before the http2 session is set up on the socket.
      http2Server.prependListener("secureConnection", hooks.secureConnection);
    }
    // Prepended last, so it runs first: every reader of the connection's
    // certificate, the hook above included, gets the pinned one.
    http2Server.prependListener("secureConnection", pinPeerCertificate);
    if (hooks.session) http2Server.prependListener("session", hooks.session);
    if (hooks.connection) {
      http2Server.prependListener("connection", hooks.connection);
    }
    if (hooks.error) http2Server.on("error", hooks.error);
    if (hooks.backlog !== undefined) {
      // grpc-js listens with an address object; net takes the backlog there.
      const listen = http2Server.listen;
      const backlog = hooks.backlog;
      http2Server.listen = function (
        this: Http2SecureServer,
        ...args: unknown[]
      ) {
        if (args[0] && typeof args[0] === "object") {
          args[0] = { ...args[0], backlog };
        }
        return (listen as (...a: unknown[]) => Http2SecureServer).apply(
          this,
          args,
        );
      } as Http2SecureServer["listen"];
    }
    if (hooks.tlsClientError) {
      http2Server.on("tlsClientError", hooks.tlsClientError);
    }
    return http2Server;
  };
}
