/**
 * grpc-js sets the TLS server name (SNI) to the target's host, and Deno's
 * `node:tls` throws when that is an IP address (Node only warns), which
 * would make `telejob --address 127.0.0.1:8443` fail. This wraps the private
 * `_createSecureConnector` of one channel-credentials object so that an IP
 * target gets no server name; the certificate is still checked against the
 * IP (the connection's `host`), so an IP missing from its SANs is refused.
 * @module
 */
import { isIP } from "node:net";
import type * as grpc from "@grpc/grpc-js";

/**
 * Makes `credentials` connect to IP targets without a TLS server name, and
 * returns them. Throws when grpc-js no longer has the private method, so a
 * grpc-js upgrade cannot silently undo it.
 */
export function dropIpServerName(
  credentials: grpc.ChannelCredentials,
): grpc.ChannelCredentials {
  type Connector = { connectionOptions?: { servername?: string } };
  const internal = credentials as unknown as {
    _createSecureConnector?: (...args: unknown[]) => Connector;
  };
  if (typeof internal._createSecureConnector !== "function") {
    throw new Error(
      "grpc-js channel credentials have no _createSecureConnector: compat/secure_connector.ts must be updated for this grpc-js version",
    );
  }
  const create = internal._createSecureConnector.bind(credentials);
  internal._createSecureConnector = (...args: unknown[]) => {
    const connector = create(...args);
    const options = connector.connectionOptions;
    if (options?.servername && isIP(options.servername)) {
      delete options.servername;
    }
    return connector;
  };
  return credentials;
}
