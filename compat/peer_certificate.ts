/**
 * Deno workaround: reads a TLS connection's peer certificate once instead of
 * on every call. Listed with its removal condition in `compat/mod.ts`.
 * @module
 */
import type { TLSSocket } from "node:tls";

/**
 * Makes `socket.getPeerCertificate()` (the plain form, which grpc-js's
 * `getAuthContext` calls on every call) return the certificate read at the
 * first call on this connection. Deno's implementation asks the TLS stack
 * and rebuilds the certificate object, DER copy included, on every call,
 * ~0.06 ms each. A TLS 1.3 connection's peer certificate cannot change after
 * the handshake (TLS 1.3 has no renegotiation), so reading it once per
 * connection loses nothing; the checks that depend on the clock stay per
 * call in {@linkcode ClientVerifier.verify}. The detailed form is passed
 * through.
 */
export function pinPeerCertificate(socket: TLSSocket): void {
  const read = socket.getPeerCertificate;
  let pinned: ReturnType<TLSSocket["getPeerCertificate"]> | undefined;
  socket.getPeerCertificate = function (
    this: TLSSocket,
    detailed?: boolean,
  ) {
    if (detailed) return read.call(this, detailed);
    // Not cached while empty: a socket without its handle yet (or any
    // more) answers without a certificate.
    if (!pinned?.raw) pinned = read.call(this, false);
    return pinned;
  } as TLSSocket["getPeerCertificate"];
}
