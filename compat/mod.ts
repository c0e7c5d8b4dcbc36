/**
 * Every workaround that patches grpc-js or Deno internals, in one place.
 * Each depends on the exact versions pinned in `deno.json` (grpc-js) and
 * `.ci/run` (Deno); when either pin moves, go through this list.
 *
 * | Workaround | Patches | Pinned on | Remove when |
 * | --- | --- | --- | --- |
 * | `http2_hooks.ts` (`hookHttp2Servers`) | grpc-js's private `Server.createHttp2Server`, wrapped per instance to reach the http2 server it creates (connection budgets, handshake deadline, backlog, the guards below) | `@grpc/grpc-js` 1.14.7 | grpc-js offers a public hook on its http2 server; it throws at start-up if the private method disappears |
 * | `peer_certificate.ts` (`pinPeerCertificate`) | `TLSSocket.getPeerCertificate` of each accepted socket: read once per connection, since Deno rebuilds it on every call (~0.06 ms) | Deno 2.9.6 | Deno's `getPeerCertificate()` stops re-reading the certificate from the TLS stack on each call |
 * | `goaway.ts` (`protectSession`) | `close`, `destroy` and `goaway` of each server HTTP/2 session, deferred one tick while a received GOAWAY is handled (use-after-free, denoland/deno#36788) | Deno 2.9.4 – 2.9.6 | the pinned Deno has the fix for denoland/deno#36788 and `tests/server_goaway_test.ts` passes with `TELEJOB_UNSAFE_DISABLE_GOAWAY_FIX=1` |
 * | `connections.ts` (`ConnectionTracker`) | grpc-js's shutdown: the server ends idle TLS sockets itself instead of sending GOAWAY, which crashes Deno grpc-js clients (same bug) | Deno 2.9.4 – 2.9.6 | together with `goaway.ts`: grpc-js's own graceful shutdown is then better |
 * | `secure_connector.ts` (`dropIpServerName`) | the private `_createSecureConnector` of grpc-js channel credentials, dropping the TLS server name for IP targets (Deno's `node:tls` throws on an IP SNI); used by the CLI | `@grpc/grpc-js` 1.14.7, Deno 2.9.6 | Deno's `node:tls` accepts an IP as `servername` (Node only warns); it throws if grpc-js loses the method |
 *
 * The server and the CLI import these workarounds from this folder only
 * (`tools/check_imports.ts` keeps it a leaf), so the list above is the whole
 * set.
 * @module
 */
export { hookHttp2Servers, type Http2Hooks } from "./http2_hooks.ts";
export { pinPeerCertificate } from "./peer_certificate.ts";
export {
  DISABLE_ENV,
  goawayProtectionEnabled,
  protectSession,
} from "./goaway.ts";
export { dropIpServerName } from "./secure_connector.ts";
export {
  ConnectionTracker,
  type DrainOptions,
  type DrainResult,
} from "./connections.ts";
